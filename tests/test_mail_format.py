"""The e-mails are formatted under keys.mail.POLICY (header classes made once): byte for byte what
Django's own formatting under ``email.policy.default`` gives, and it is what delivery sends."""

from __future__ import annotations

import email
import email.policy
import re
from types import SimpleNamespace

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from keys import delivery
from keys.mail import POLICY, Email, build_email

LOCMEM_MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def comparable(raw: bytes) -> bytes:
    """The bytes without what differs at every formatting: date, generated Message-ID, boundary."""
    raw = re.sub(rb"Date: [^\r\n]*", b"Date: -", raw)
    raw = re.sub(rb"Message-ID: <[0-9.]+@[^\r\n]*", b"Message-ID: -", raw)
    boundaries = set(re.findall(rb'boundary="([^"]+)"', raw))
    for number, boundary in enumerate(sorted(boundaries)):
        raw = raw.replace(boundary, b"BOUNDARY%d" % number)
    return raw


def messages() -> list[Email]:
    key = SimpleNamespace(email="élise.dupont@example.be", kind="email")
    citizen = SimpleNamespace(first_name="Élise", last_name="Dupont-Müller", email=key.email)
    made = []
    for language in ("nl", "fr", "de", "en"):
        made.append(
            build_email(
                "registration_code",
                {"code": "123456", "key": key, "minutes": 10, "signin": True},
                to="Élise Dupont <elise.dupont@example.be>",
                language=language,
            )
        )
        made.append(
            build_email(
                "security_notice",
                {
                    "notice": "new_browser",
                    "citizen": citizen,
                    "when": timezone.now(),
                    "browser": "Mozilla/5.0 (X11; Linux x86_64) Chromium/131",
                    "ip": "2001:db8::1",
                },
                to="elise.dupont@example.be",
                language=language,
            )
        )
    long = Email(
        subject="Ééééé " * 30,
        body="é" * 2000,
        to=["a@example.be", "Bé <b@example.be>"],
        headers={"Message-ID": "<csam.outbox.1.2@example.be>", "Content-Language": "fr"},
    )
    long.attach_alternative("<p>" + "é" * 2000 + "</p>", "text/html")
    return [*made, long]


@pytest.mark.parametrize("index", range(9))
def test_the_bytes_are_djangos_under_the_default_policy(settings, index):
    settings.SITE_URL = "https://mijnsleutels.example.be"
    message = messages()[index]
    ours = message.message().as_bytes()
    djangos = EmailMultiAlternatives.message(message, policy=email.policy.default).as_bytes()
    assert comparable(ours) == comparable(djangos)
    parsed = email.message_from_bytes(ours, policy=email.policy.default)
    assert parsed["Subject"] == message.subject
    assert parsed.get_body(("plain",)).get_content().rstrip("\n") == message.body.rstrip("\n")


def test_each_header_class_is_made_once():
    assert POLICY.header_factory["Subject"] is POLICY.header_factory["subject"]
    assert POLICY.header_factory["To"] is POLICY.header_factory["to"]
    # What the registry saves: the standard one makes a new class every time.
    assert (
        email.policy.default.header_factory["Subject"]
        is not (email.policy.default.header_factory["Subject"])
    )
    assert Email(subject="x", body="y", to=["a@example.be"]).message().policy is POLICY


def test_delivery_sends_the_made_once_formatting(db, settings):
    settings.MAILERS = LOCMEM_MAILERS
    mail.outbox = []
    message = build_email(
        "registration_code",
        {"code": "123456", "key": SimpleNamespace(email="a@example.be"), "minutes": 10},
        to="a@example.be",
        language="fr",
    )
    outbound = delivery.queue_email(message, purpose="test")
    assert outbound.status == "sent"
    (sent,) = mail.outbox
    assert isinstance(sent, Email)
    assert sent.message().policy is POLICY
    assert sent.extra_headers["Message-ID"].startswith("<csam.outbox.")
