"""``{% passkey_options key purpose %}``: the options of the passkey ceremony of a page, as a
``<script type="application/json">`` block (data, never executed: the CSP allows no inline
script) that ``static/keys/passkey.js`` reads. Its challenge waits in the session."""

from __future__ import annotations

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString

from keys.digital_keys import passkey
from keys.models import DigitalKey

register = template.Library()


@register.simple_tag(takes_context=True)
def passkey_options(context: template.Context, key: DigitalKey, purpose: str) -> SafeString:
    """Registration options for a pending key (``purpose`` "activate" or "add"), sign-in
    options for an active one (``purpose`` "signin")."""
    request = context["request"]
    if purpose == "signin":
        options = passkey.authentication_options(request, key)
        mode = "get"
    else:
        options = passkey.registration_options(request, key)
        mode = "create"
    return json_script({"mode": mode, "publicKey": options}, "passkey-options")
