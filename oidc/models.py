"""The services that sign citizens in with their digital keys, and what citizens allowed them.

A service is django-oauth-toolkit's ``Application`` (client id, hashed secret, exact redirect
URIs, RS256) with a :class:`Service` beside it for what this provider adds: whether it may
receive the national register number, the level it needs at least, and the sector its pairwise
subject identifiers are computed for.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import Application

LEVEL_CHOICES = [
    ("low", _("low")),
    ("substantial", _("substantial")),
    ("high", _("high")),
]


class Service(models.Model):
    application = models.OneToOneField(
        Application, on_delete=models.CASCADE, related_name="service", verbose_name=_("client")
    )
    allow_nrn = models.BooleanField(
        _("may receive the national register number"),
        default=False,
        help_text=_("Scope egovnrn: refused to a service that is not allowed it."),
    )
    min_level = models.CharField(
        _("minimum level"), max_length=20, choices=LEVEL_CHOICES, default="substantial"
    )
    sector = models.CharField(
        _("sector"),
        max_length=200,
        help_text=_(
            "Services of one sector receive the same subject identifier for a citizen; "
            "by default the host of the redirect URI."
        ),
    )
    created_at = models.DateTimeField(_("registered"), default=timezone.now)

    class Meta:
        verbose_name = _("government service")
        verbose_name_plural = _("government services")

    def __str__(self) -> str:
        return self.application.name


class Consent(models.Model):
    """A citizen's yes to a service, for these scopes; withdrawn by deleting it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_consents"
    )
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="consents")
    scopes = models.CharField(max_length=200)
    granted_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "service"], name="one_consent_per_service")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} -> {self.service_id}"

    def covers(self, scopes: list[str]) -> bool:
        return set(scopes) <= set(self.scopes.split())


class UsedCode(models.Model):
    """An authorization code already exchanged (its SHA-256 only): presented again, the tokens
    issued for it are revoked (RFC 6749 §4.1.2)."""

    code_hash = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    #: when the code was issued: the tokens issued since are the ones it gave
    used_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.code_hash[:12]
