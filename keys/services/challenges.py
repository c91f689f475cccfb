"""Sending a key's code and telling the citizen what happened, in one place.

The wizard, "Mijn digitale sleutels" (add a key, change the mobile number) and sign-in all start
a verification the same way: :func:`start_verification` sends the code when the kind sends codes,
within the cooldown and hourly cap of ``keys.digital_keys.base``, and puts exactly one message
per outcome on the page. :func:`verify_error` is the one wording of every refused code.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib import messages
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from keys.digital_keys import ChallengeResult, Outcome, VerifyResult, get_kind
from keys.models import DigitalKey


class Purpose(StrEnum):
    """Why a code is sent: it decides the wording of the message that carries it."""

    ACTIVATE = "activate"
    SIGNIN = "signin"


def start_verification(
    key: DigitalKey,
    request: HttpRequest,
    purpose: Purpose = Purpose.ACTIVATE,
    *,
    announce: bool = False,
) -> ChallengeResult:
    """Send a fresh code for ``key`` (every older code dies) and report the outcome.

    Kinds that send nothing (the app) answer OK at once. ``announce`` says "a new code is on its
    way" when the code is sent; refusals (too soon, too many, delivery trouble) are always said.
    """
    kind = get_kind(key.kind)
    if not kind.delivers_codes:
        return ChallengeResult(Outcome.OK)
    result = kind.send_challenge(key, request=request, signin=purpose == Purpose.SIGNIN)
    report(request, result, announce=announce)
    return result


def report(request: HttpRequest, result: ChallengeResult, *, announce: bool = False) -> None:
    """The one message of each outcome of sending a code."""
    if result.outcome == Outcome.OK:
        if announce:
            messages.success(request, _("A new code is on its way."))
    elif result.outcome == Outcome.TOO_SOON:
        messages.warning(
            request,
            ngettext(
                "You can ask for a new code in %(seconds)d second.",
                "You can ask for a new code in %(seconds)d seconds.",
                result.retry_after_seconds,
            )
            % {"seconds": result.retry_after_seconds},
        )
    elif result.outcome == Outcome.TOO_MANY:
        minutes = max(1, (result.retry_after_seconds + 59) // 60)
        messages.warning(
            request,
            ngettext(
                "You asked for too many codes. You can ask again in %(minutes)d minute, or "
                "choose another digital key.",
                "You asked for too many codes. You can ask again in %(minutes)d minutes, or "
                "choose another digital key.",
                minutes,
            )
            % {"minutes": minutes},
        )
    else:
        messages.warning(
            request,
            _(
                "We could not send the code right now. It may take a few minutes before it "
                "arrives; you can also ask for a new code or choose another digital key."
            ),
        )


def verify_error(result: VerifyResult) -> str:
    """What the citizen reads when a code is refused, for every kind and every page."""
    if result.message:
        return str(result.message)
    if result.outcome == Outcome.WRONG:
        count = result.remaining_attempts or 0
        return ngettext(
            "This code is not correct. You have %(count)d more attempt.",
            "This code is not correct. You have %(count)d more attempts.",
            count,
        ) % {"count": count}
    if result.outcome == Outcome.LOCKED:
        minutes = max(1, (result.retry_after_seconds + 59) // 60)
        return ngettext(
            "Too many wrong codes. For your safety, this digital key is paused for "
            "%(minutes)d minute.",
            "Too many wrong codes. For your safety, this digital key is paused for "
            "%(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}
    wording = {
        Outcome.EXHAUSTED: _("Too many wrong tries for this code. Ask for a new code."),
        Outcome.EXPIRED: _("This code has expired. Ask for a new code."),
        Outcome.NO_CODE: _("There is no valid code for this key. Ask for a new code."),
        Outcome.REFUSED: _(
            "Your answer could not be checked. Try again, or choose another digital key."
        ),
        Outcome.REPLAY: _(
            "This code was already used. Wait until your app shows a new code and type that one."
        ),
    }
    return wording.get(result.outcome, _("This code is not correct."))
