"""The e-mails the service sends, rendered in the citizen's language with text and HTML parts."""

import base64
import binascii
import email.message
import email.policy
import re
import secrets
from datetime import UTC, datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.timezone import get_current_timezone

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


# --- the bytes an SMTP server receives --------------------------------------------------------

#: An address the fast formatting writes as it is: a plain ASCII ``local@domain`` (dot-atoms,
#: so nothing to quote), optionally after a display name of letters, digits, spaces and
#: hyphens (an RFC 5322 phrase of atoms: nothing to quote or encode either).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_ADDRESS = re.compile(rf"(?:{_ADDR_SPEC}|[A-Za-z0-9-]+(?: [A-Za-z0-9-]+)* <{_ADDR_SPEC}>)")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII but the colon (RFC 5322 field name)
_LONGEST_LINE = 998  # RFC 5322 2.1.1
#: Extra headers Django refuses or would write twice, those of the MIME structure and a
#: recipients' header text of its own: the message goes to Django's formatting (which raises
#: where it should).
_NOT_EXTRA = {
    *("bcc", "subject", "mime-version", "content-type", "content-transfer-encoding"),
    *("to", "cc", "reply-to"),
}


def _quoted_printable(text: str) -> bytes:
    """``text`` in UTF-8, quoted-printable (RFC 2045 6.7), CRLF line ends, ending with one (as
    the e-mail package writes a text part): 7-bit lines of at most 76 characters whatever the
    text (``binascii``, C)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"  # as the e-mail package's content manager ends every text part
    text = text.replace("\n", "\r\n")
    return binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False)


#: UTF-8 bytes in one encoded word: base64 of 42 bytes is 56 characters, 68 with
#: ``=?utf-8?b?`` and ``?=`` (RFC 2047 allows 75), 77 after ``Subject: `` (RFC 5322: 78).
_WORD_BYTES = 42


def _encoded_words(text: str) -> str:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), one a line after the first, each
    ending on a whole character: a reader joins them back without the folding's space."""
    words = []
    chunk = bytearray()
    for character in text:
        encoded = character.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk)
            chunk = bytearray()
        chunk += encoded
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words)


def wire_bytes(message: EmailMessage) -> bytes | None:
    """The message as the SMTP backend sends it, formatted directly: CRLF line ends, 7-bit
    (each text part quoted-printable in UTF-8, a non-ASCII subject as RFC 2047 encoded words),
    every line within RFC 5322's limits. ``None`` when the message is not of the shape the
    service sends (a text body and HTML alternatives, no attachment, no Cc or Reply-To, plain
    ASCII addresses, ASCII extra headers, no line break in a header): Django formats those.

    Django's formatting (``message(policy=email.policy.SMTP).as_bytes()``) builds the message
    with the e-mail package's header objects and content manager: about 1.1 ms of CPU for a
    two-part e-mail on the benchmark machine, against about 0.15 ms here. A reader parsing
    either gets the same headers and the same text (``tests/test_mail_format.py``)."""
    if message.attachments or message.cc or message.reply_to or not message.to:
        return None
    if (message.encoding or settings.DEFAULT_CHARSET).lower().replace("_", "-") != "utf-8":
        return None
    if message.content_subtype != "plain" or not isinstance(message.body, str):
        return None
    alternatives = getattr(message, "alternatives", [])
    for content, mimetype in alternatives:
        if mimetype != "text/html" or not isinstance(content, str):
            return None
    sender = str(message.extra_headers.get("From", message.from_email))
    subject = str(message.subject)
    if not all(_PLAIN_ADDRESS.fullmatch(address) for address in (sender, *message.to)):
        return None
    if not subject.isprintable():
        return None  # a line break (Django refuses it: let it say so) or another control

    lines = []
    header_names = set()
    for name, value in message.extra_headers.items():
        header = name.lower()
        if header in _NOT_EXTRA or header in header_names or not _HEADER_NAME.fullmatch(name):
            return None
        header_names.add(header)
        if not isinstance(value, str):
            return None
        if header == "from":
            continue  # the From line below
        if "\r" in value or "\n" in value or not value.isascii():
            return None
        lines.append(f"{name}: {value}")
    if subject.isascii() and "=?" not in subject and len(subject) <= 69:
        encoded_subject = subject  # "Subject: " and it fit in 78 characters, nothing to encode
    else:  # RFC 2047 encoded words, folded: a reader joins them back without a space
        encoded_subject = _encoded_words(subject)
    head = [f"Subject: {encoded_subject}", f"From: {sender}", f"To: {', '.join(message.to)}"]
    if "date" not in header_names:
        zone = get_current_timezone() if settings.EMAIL_USE_LOCALTIME else UTC
        head.append(f"Date: {format_datetime(datetime.now(zone))}")
    if "message-id" not in header_names:
        head.append(f"Message-ID: {make_msgid(domain=DNS_NAME)}")
    head += lines
    if any(len(part) > _LONGEST_LINE for line in head for part in line.split("\r\n")):
        return None
    plain = b'Content-Type: text/plain; charset="utf-8"\r\n'
    encoding = b"Content-Transfer-Encoding: quoted-printable\r\n"
    if not alternatives:
        top = b"MIME-Version: 1.0\r\n" + plain + encoding
        return top + "\r\n".join(head).encode() + b"\r\n\r\n" + _quoted_printable(message.body)
    boundary = f"==============={secrets.token_hex(12)}==".encode()
    out = [
        b'Content-Type: multipart/alternative;\r\n boundary="' + boundary + b'"\r\n',
        b"MIME-Version: 1.0\r\n",
        "\r\n".join(head).encode(),
        b"\r\n\r\n",
    ]
    parts = [(plain, message.body)] if message.body else []
    parts += [(b'Content-Type: text/html; charset="utf-8"\r\n', html) for html, _ in alternatives]
    for content_type, text in parts:
        out += [b"--", boundary, b"\r\n", content_type, encoding, b"\r\n"]
        out += [_quoted_printable(text), b"\r\n"]
    out += [b"--", boundary, b"--\r\n"]
    return b"".join(out)
