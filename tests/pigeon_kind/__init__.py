"""A fifth kind of digital key, made for the tests alone (``tests/test_kind_footprint.py``):
codes by pigeon post. It is this one module, its templates (``templates/``, added to the
template directories by the test) and the line the test puts in the registry, nothing else.

It uses the hooks of ``keys.digital_keys.base.KeyKind`` a kind with pages of its own uses: a
script, a block on the sign-in page, links under its key in "My digital keys", its own wording
of the remove link and of the sign-in page, and a page of its own in the ``keys`` namespace.
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.crypto import salted_hmac

from keys.digital_keys.base import KeyKind, Outcome, VerifyResult
from keys.models import DigitalKey


def pigeon_code(key: DigitalKey) -> str:
    """The code the pigeon brings for ``key`` (six digits, fixed per key: a test kind)."""
    digest = salted_hmac("tests.pigeon", str(key.pk), algorithm="sha256").hexdigest()
    return f"{int(digest, 16) % 10**6:06d}"


def loft_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("The pigeon loft")


class PigeonKind(KeyKind):
    kind = "pigeon"
    label = "Code by pigeon post"
    code_label = "Pigeon code"
    activated_title = "Pigeon key activated!"
    activated_text = "The pigeon knows where you live."
    instructions_template = "keys/digital_keys/pigeon.html"
    script = "keys/pigeon.js"
    signin_title = "Unroll the pigeon's note"
    signin_template = "keys/digital_keys/pigeon_signin.html"
    my_keys_template = "keys/digital_keys/pigeon_my_keys.html"

    def choice_help(self, citizen) -> str:
        return "A pigeon brings the code."

    def describe(self, key: DigitalKey) -> str:
        return "Loft 7"

    def remove_label(self, key: DigitalKey) -> str:
        return "Release the pigeon"

    def verify(self, key: DigitalKey, code: str, *, request=None) -> VerifyResult:
        if hmac.compare_digest(code, pigeon_code(key)):
            return VerifyResult(Outcome.OK)
        return VerifyResult(Outcome.WRONG)

    def urlpatterns(self) -> list:
        return [path("duivenhok/", loft_view, name="pigeon-loft")]
