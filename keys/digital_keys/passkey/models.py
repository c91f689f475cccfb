"""The passkey kind's own table: the WebAuthn credential of a passkey key.

It belongs to the ``keys`` app (``app_label``; the table ``keys_passkeycredential`` of migration
0014 is unchanged) and is loaded with the app's models through the kind's ``models_module``
(``keys.models`` imports the models module of every registered kind).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from keys.models import DigitalKey


class PasskeyCredential(models.Model):
    """The WebAuthn credential of a passkey key (``keys.digital_keys.passkey``).

    Nothing here is secret: the public key, the credential id and the signature counter. The
    counter of the last accepted sign-in is kept to detect a copied authenticator (WebAuthn
    §6.1.1): a sign-in whose counter does not go up is refused.
    """

    key = models.OneToOneField(DigitalKey, on_delete=models.CASCADE, related_name="passkey")
    name = models.CharField(_("name"), max_length=60)
    credential_id = models.CharField(max_length=1400, unique=True, editable=False)
    public_key = models.BinaryField(editable=False)
    sign_count = models.PositiveBigIntegerField(default=0, editable=False)
    user_handle = models.CharField(max_length=100, db_index=True, editable=False)
    transports = models.JSONField(default=list, blank=True, editable=False)
    aaguid = models.CharField(max_length=36, blank=True, editable=False)
    backed_up = models.BooleanField(default=False, editable=False)
    usernameless = models.BooleanField(_("sign in with the passkey alone"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        app_label = "keys"
        verbose_name = _("passkey")
        verbose_name_plural = _("passkeys")

    def __str__(self) -> str:
        return self.name


class DiscoverChallenge(models.Model):
    """A challenge of the username-less sign-in (the browser's autofill) awaiting its answer.

    Kept here rather than in the session: the options are fetched by the sign-in page's script
    while the citizen may already be typing username and password, and a response that wrote
    the session would set its cookie again, racing the password's response that cycles the
    session key (the later one would win and lose the pending sign-in). Only the SHA-256 digest
    of the challenge is stored; the first answer naming it deletes the row (single use), and
    rows past ``expires_at`` are purged when new options are made.
    """

    digest = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(db_index=True, editable=False)

    class Meta:
        app_label = "keys"

    def __str__(self) -> str:
        return f"challenge {self.digest[:8]}… until {self.expires_at:%Y-%m-%d %H:%M:%S}"
