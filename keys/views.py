"""The citizen's pages. Views stay thin: the work is done in ``keys.services``."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache


def home(request: HttpRequest) -> HttpResponse:
    """What the service is and what the citizen needs to activate their keys."""
    return render(request, "keys/home.html")


@never_cache
def activation_link(request: HttpRequest, token: str) -> HttpResponse:
    """Placeholder replaced by the wizard's link handling."""
    return render(request, "keys/home.html")
