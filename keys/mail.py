"""The e-mails the service sends, rendered in the citizen's language with text and HTML parts."""

import email.message
import email.policy
from email.headerregistry import BaseHeader, HeaderRegistry

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from keys.conf import limits


class _MadeOnceRegistry(HeaderRegistry):
    """The standard header classes, each made once. ``HeaderRegistry`` builds a new class
    (``type(...)``) for every header of every message it formats: about a third of the CPU of
    turning a two-part e-mail into bytes. The classes made are the same; only kept."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(key)
        return made


#: ``email.policy.default`` (what Django formats messages with) and ``email.policy.SMTP``
#: (what its SMTP backend sends with: CRLF line ends), each with the made-once registry.
POLICY = email.policy.default.clone(header_factory=_MadeOnceRegistry())
SMTP_POLICY = email.policy.SMTP.clone(header_factory=POLICY.header_factory)
_MADE_ONCE = {id(email.policy.default): POLICY, id(email.policy.SMTP): SMTP_POLICY}


class Email(EmailMultiAlternatives):
    """Django's two-part e-mail, formatted under the policy asked for (``email.policy.default``
    unless said otherwise; Django's SMTP backend asks for ``email.policy.SMTP``), with header
    classes made once: the same bytes, less CPU."""

    def message(self, *, policy: email.policy.Policy = POLICY) -> email.message.EmailMessage:
        return super().message(policy=_MADE_ONCE.get(id(policy), policy))


def build_email(template: str, context: dict, *, to: str, language: str) -> Email:
    """Render ``keys/email/<template>_subject.txt``, ``.txt`` and ``.html`` in ``language``."""
    with translation.override(language):
        context = {
            "limits": limits,
            "site_url": settings.SITE_URL,
            "LANGUAGE_CODE": language,
            **context,
        }
        subject = render_to_string(f"keys/email/{template}_subject.txt", context)
        subject = " ".join(subject.split())
        text = render_to_string(f"keys/email/{template}.txt", context)
        html = render_to_string(f"keys/email/{template}.html", context)
    message = Email(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to])
    message.attach_alternative(html, "text/html")
    message.extra_headers["Content-Language"] = language
    return message
