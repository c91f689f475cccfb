"""The citizen withdraws a service's consent from "My digital keys"."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from keys.account_views import citizen_required
from oidc.models import Consent
from oidc.services import consent as consents


@require_POST
@citizen_required
def withdraw_consent_view(request: HttpRequest, consent_id: int) -> HttpResponse:
    consent = get_object_or_404(
        Consent.objects.select_related("service__application"), pk=consent_id, user=request.user
    )
    consents.withdraw(request, request.user, consent)
    messages.success(
        request,
        _("“%(service)s” no longer receives your data; it will ask again at your next sign-in.")
        % {"service": consent.service.application.name},
    )
    return redirect("keys:my-keys")
