"""The e-mails the service sends, rendered in the citizen's language with text and HTML parts."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from keys.conf import limits


def build_email(template: str, context: dict, *, to: str, language: str) -> EmailMultiAlternatives:
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
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]
    )
    message.attach_alternative(html, "text/html")
    message.extra_headers["Content-Language"] = language
    return message
