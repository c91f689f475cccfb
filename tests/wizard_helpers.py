"""Driving the wizard with Django's test client, as a browser without JavaScript would."""

from __future__ import annotations

import re

import pyotp
from django.core import mail
from django.urls import reverse

from keys import sms

STEP_URL = "/nl/activatie/{}/"


def step_url(step: str, language: str = "nl") -> str:
    return f"/{language}/activatie/{step}/"


def post_step(
    client, step: str, data: dict, *, language: str = "nl", follow: bool = False, **extra
):
    payload = {"activation_wizard-current_step": step}
    payload.update(
        {
            f"{step}-{k}" if not k.startswith(("wizard_", "resend")) else k: v
            for k, v in data.items()
        }
    )
    return client.post(step_url(step, language), payload, follow=follow, **extra)


def open_link(client, link: str):
    path = link.replace("http://testserver", "")
    return client.get(path)


def last_email_code() -> str:
    body = mail.outbox[-1].body
    return re.search(r"\b(\d{6})\b", body).group(1)


def last_sms_code() -> str:
    return re.search(r"\b(\d{6})\b", sms.outbox[-1].body).group(1)


def totp_code(secret_grouped: str, offset_steps: int = 0) -> str:
    import time

    totp = pyotp.TOTP(secret_grouped.replace(" ", ""))
    return totp.at(time.time() + 30 * offset_steps)


def secret_from_page(html: str) -> str:
    return re.search(r'<p class="secret" id="totp-secret"[^>]*>([A-Z2-7 ]+)</p>', html).group(1)


def wizard_path(step: str) -> str:
    return reverse("keys:wizard-step", kwargs={"step": step})
