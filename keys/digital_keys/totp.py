"""Mobiele app: TOTP (RFC 6238) in an authenticator app.

The secret is generated once per enrolment (``enrol`` is idempotent, so a reload or a second tab
shows the same QR code), stored only encrypted (``keys.crypto``), and shown as a QR code, as
grouped text and as an ``otpauth://`` link. A time step is accepted once: the last accepted step
is remembered and a code of that step or an earlier one is refused (no replay).
"""

import math
from typing import Any

import pyotp
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from keys import crypto
from keys.conf import limits
from keys.digital_keys.base import KeyKind, Outcome, VerifyResult
from keys.models import DigitalKey
from keys.prepared import PreparedRead, update_row
from keys.qr import otpauth_uri, qr_svg

# The key read with its row locked, its SQL built once per connection (keys/prepared.py).
_LOCKED_KEY = PreparedRead(DigitalKey.objects.select_for_update(), "pk")

AUTHENTICATOR_APPS = [
    "Google Authenticator",
    "Microsoft Authenticator",
    "FreeOTP",
    "Aegis Authenticator (Android)",
    "2FAS Auth",
]


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=limits.TOTP_DIGITS, interval=limits.TOTP_INTERVAL)


def group_secret(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


class TotpKind(KeyKind):
    kind = DigitalKey.Kind.TOTP
    label = _("Mobile app")
    code_label = _("Security code")
    activated_title = _("Mobile app activated!")
    activated_text = _(
        "Your mobile app was activated successfully. From now on you can sign in to the online "
        "government (*) with your username + password and the security code your app shows."
    )
    instructions_template = "keys/digital_keys/totp.html"
    staff_second_factor = True

    @property
    def code_digits(self) -> int:
        return limits.TOTP_DIGITS

    def choice_help(self, citizen: Any) -> str:
        return str(
            _(
                "The most secure: an authenticator app on your smartphone shows a new code every "
                "30 seconds."
            )
        )

    def enrol(self, key: DigitalKey) -> None:
        if key.secret_encrypted:
            return
        key.secret_encrypted = crypto.encrypt(pyotp.random_base32(length=32))
        if not key._state.adding:  # a new key gets its secret with its INSERT
            key.save(update_fields=["secret_encrypted"])

    def secret(self, key: DigitalKey) -> str:
        return crypto.decrypt(key.secret_encrypted)

    def provisioning_uri(self, key: DigitalKey, secret: str | None = None) -> str:
        return otpauth_uri(
            self.secret(key) if secret is None else secret,
            account=key.user.get_username(),
            issuer=limits.TOTP_ISSUER,
            digits=limits.TOTP_DIGITS,
            period=limits.TOTP_INTERVAL,
        )

    def setup_context(self, key: DigitalKey) -> dict[str, Any]:
        secret = self.secret(key)  # decrypted once for the QR code and the text beside it
        uri = self.provisioning_uri(key, secret)
        return {
            "otpauth_uri": uri,
            "qr_svg": qr_svg(uri),
            "secret_grouped": group_secret(secret),
            "authenticator_apps": AUTHENTICATOR_APPS,
        }

    def verify(
        self, key: DigitalKey, code: str, *, request: HttpRequest | None = None
    ) -> VerifyResult:
        """Check an app code: once per time step, and ``OTP_MAX_ATTEMPTS`` wrong codes in a row
        pause the key for ``TOTP_LOCKOUT`` (even the right code is refused meanwhile), as a
        sent code stops after as many wrong tries."""
        now = timezone.now()
        with transaction.atomic():
            locked = _LOCKED_KEY.get(pk=key.pk)
            if locked.locked_until is not None and locked.locked_until > now:
                wait = math.ceil((locked.locked_until - now).total_seconds())
                return VerifyResult(Outcome.LOCKED, 0, retry_after_seconds=wait)
            totp = _totp(self.secret(locked))
            current_step = totp.timecode(now)
            window = limits.TOTP_VALID_WINDOW
            for offset in range(-window, window + 1):
                step = current_step + offset
                if pyotp.utils.strings_equal(code, totp.generate_otp(step)):
                    if locked.last_totp_step is not None and step <= locked.last_totp_step:
                        return VerifyResult(Outcome.REPLAY)
                    # Prepared UPDATEs, not save(update_fields=...): its SQL compiled on every
                    # code checked (issue 10).
                    update_row(
                        DigitalKey,
                        locked.pk,
                        last_totp_step=step,
                        failed_attempts=0,
                        locked_until=None,
                    )
                    key.last_totp_step = step
                    key.failed_attempts = 0
                    key.locked_until = None
                    return VerifyResult(Outcome.OK)
            locked.failed_attempts += 1
            remaining = limits.OTP_MAX_ATTEMPTS - locked.failed_attempts
            if remaining <= 0:
                update_row(
                    DigitalKey, locked.pk, failed_attempts=0, locked_until=now + limits.TOTP_LOCKOUT
                )
                wait = int(limits.TOTP_LOCKOUT.total_seconds())
                return VerifyResult(Outcome.LOCKED, 0, retry_after_seconds=wait)
            update_row(DigitalKey, locked.pk, failed_attempts=locked.failed_attempts)
            return VerifyResult(Outcome.WRONG, remaining)
