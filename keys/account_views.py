"""Signing in ("Aanmelden") and the citizen's own page ("Mijn digitale sleutels").

Sign-in is username and password, then a choice among the active keys, then the key's code,
checked by the same key modules as the activation wizard. The signed-in session ends after
15 idle minutes; every change is audited and announced by e-mail.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial, wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.db.models import Case, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from keys import audit, backends
from keys.conf import limits
from keys.digital_keys import KINDS, LEVELS, addable_kinds, get_kind, key_relations, level_of
from keys.forms import (
    AddKeyForm,
    CurrentPasswordForm,
    KeyPickForm,
    NewPasswordForm,
    PhoneChangeForm,
    SignInForm,
    VerifyForm,
)
from keys.models import AuditEvent, DigitalKey, User
from keys.prepared import PreparedRead
from keys.ratelimit import check_limits, reauth_refused
from keys.services import activation as flow
from keys.services import challenges, probation, recovery, selfservice, signin
from keys.services.challenges import Purpose
from keys.views import TOUCH_INTERVAL

PENDING = "csam_signin"
LAST_SEEN = "csam_account_last_seen"
ADDING = "csam_adding_key"
PHONE = "csam_phone_change"
NEXT = "csam_signin_next"
#: The key a weak session (``signin.is_strong``) added: such a session may add one, no more.
WEAK_ADDED = "csam_weak_added_key"
ACTIVITY = [
    AuditEvent.Action.SIGNIN_SUCCEEDED,
    AuditEvent.Action.SIGNIN_FAILED,
    AuditEvent.Action.SIGNIN_LOCKED,
    AuditEvent.Action.NEW_BROWSER,
    AuditEvent.Action.KEY_ACTIVATED,
    AuditEvent.Action.KEY_REMOVED,
    AuditEvent.Action.KEY_CANCELLED,
    AuditEvent.Action.PHONE_CHANGED,
    AuditEvent.Action.PASSWORD_CHANGED,
    AuditEvent.Action.PASSWORD_RESET,
    AuditEvent.Action.SIGNED_OUT_EVERYWHERE,
    AuditEvent.Action.OIDC_SIGNIN,
    AuditEvent.Action.OIDC_CONSENT_WITHDRAWN,
]


def _form_page(request: HttpRequest, template: str, **context: Any) -> HttpResponse:
    return render(request, template, context)


# Read on each of the sign-in's steps: its SQL built once per connection (keys/prepared.py).
_PENDING_USER = PreparedRead(User.objects.select_related("citizen").filter(is_active=True), "pk")
_ACTIVE_KEYS = PreparedRead(
    DigitalKey.objects.filter(state=DigitalKey.State.ACTIVE).order_by("kind"), "user_id"
)
_ACTIVE_KEY = PreparedRead(
    DigitalKey.objects.filter(state=DigitalKey.State.ACTIVE), "pk", "user_id"
)


def _pending(request: HttpRequest) -> tuple[User, dict] | None:
    """The half-finished sign-in of this session (password checked), if still fresh."""
    pending = request.session.get(PENDING)
    if not pending:
        return None
    age = timezone.now().timestamp() - pending.get("at", 0)
    if age > limits.OTP_TTL.total_seconds():
        request.session.pop(PENDING, None)
        return None
    try:
        user = _PENDING_USER.get(pk=pending["user_id"])
    except User.DoesNotExist:
        return None
    return user, pending


def _remember_next(request: HttpRequest) -> None:
    """Where to go once signed in (``?next=``, a path of this site only; e.g. a service's
    OpenID Connect request), kept in the session across the three steps."""
    target = request.GET.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        request.session[NEXT] = target
    else:
        request.session.pop(NEXT, None)


@never_cache
@sensitive_post_parameters("password")
def signin_view(request: HttpRequest) -> HttpResponse:
    """Step 1: username and password."""
    if request.method == "GET":
        _remember_next(request)
    form = SignInForm(request.POST or None)
    if request.method == "POST":
        refused = check_limits(request, [("signin:ip", audit.client_ip(request))])
        if refused:
            return refused
        if form.is_valid():
            result = signin.check_password(
                request, form.cleaned_data["username"], form.cleaned_data["password"]
            )
            if result.outcome == signin.SignInOutcome.OK:
                request.session.cycle_key()
                request.session[PENDING] = {
                    "user_id": result.user.pk,
                    "at": timezone.now().timestamp(),
                }
                return redirect("keys:signin-key")
            if result.outcome == signin.SignInOutcome.LOCKED:
                form.add_error(
                    None,
                    signin.locked_message(result.retry_after_minutes),
                )
            else:
                form.add_error(None, _("The username or the password is not correct."))
    return _form_page(request, "keys/account/signin.html", form=form)


@never_cache
def signin_key_view(request: HttpRequest) -> HttpResponse:
    """Step 2: which digital key to use."""
    pending = _pending(request)
    if pending is None:
        return redirect("keys:signin")
    user, data = pending
    keys = _ACTIVE_KEYS.all(user_id=user.pk)
    for key in keys:
        key.user = user  # as user.digital_keys would: no read of the user per key
    keys.sort(key=lambda k: list(KINDS).index(k.kind))
    if not keys:
        # The last key went away between the password and this step: start again.
        request.session.pop(PENDING, None)
        messages.error(request, _("There is no active digital key on this account any more."))
        return redirect("keys:signin")
    form = KeyPickForm(request.POST or None, keys=keys, initial={"key": str(keys[0].pk)})
    if request.method == "POST" and form.is_valid():
        key = next(k for k in keys if str(k.pk) == form.cleaned_data["key"])
        data["key_id"] = key.pk
        request.session[PENDING] = data
        refused = _resend_limits(request, key, resend=False)
        if refused:
            return refused
        challenges.start_verification(key, request, Purpose.SIGNIN)
        return redirect("keys:signin-code")
    return _form_page(
        request,
        "keys/account/signin_key.html",
        form=form,
        recovery_codes_enabled=recovery.enabled(),
    )


def _resend_limits(
    request: HttpRequest, key: DigitalKey, *, resend: bool = True
) -> HttpResponse | None:
    """The limits on asking a key for a code: per key always, per address for the explicit
    "ask for a new code" (a first code after a choice is no reason to slow a shared address)."""
    checks: list[tuple[str, object]] = [("resend:key", key.pk)]
    if resend:
        checks.insert(0, ("resend:ip", audit.client_ip(request)))
    return check_limits(request, checks)


@never_cache
@sensitive_post_parameters("code")
def signin_code_view(request: HttpRequest) -> HttpResponse:
    """Step 3: the key's code; then signed in."""
    pending = _pending(request)
    if pending is None or not pending[1].get("key_id"):
        return redirect("keys:signin")
    user, data = pending
    try:
        key = _ACTIVE_KEY.get(pk=data["key_id"], user_id=user.pk)
    except DigitalKey.DoesNotExist:
        raise Http404 from None
    key.user = user
    kind = get_kind(key.kind)
    if request.method == "POST" and "resend" in request.POST:
        refused = _resend_limits(request, key)
        if refused:
            return refused
        challenges.start_verification(key, request, Purpose.SIGNIN, announce=True)
        return redirect("keys:signin-code")
    form = VerifyForm(
        request.POST or None,
        label=_("Security code"),
        check=partial(signin.check_key, request, user, key),
        digits=kind.code_digits,
        no_answer=kind.ceremony_no_answer,
    )
    if request.method == "POST":
        refused = check_limits(
            request, [("verify:ip", audit.client_ip(request)), ("verify:key", f"signin:{key.pk}")]
        )
        if refused:
            return refused
        if form.is_valid():
            request.session.pop(PENDING, None)
            _login(request, user)
            signin.record_success(request, user, key, attempt_recorded=True)
            if key.in_probation():
                # Added after a recovery and still on probation: level "low" at most, and a
                # weak session (keys.services.probation).
                messages.warning(request, _probation_text(key))
                return signed_in(request, user, methods=["pwd", kind.amr], level=LEVELS[0], key=key)
            return signed_in(
                request,
                user,
                methods=["pwd", kind.amr],
                level=level_of(key.kind),
                key=key,
                strong=True,
            )
    return _form_page(
        request,
        "keys/account/signin_code.html",
        form=form,
        key=key,
        kind=kind,
        key_target=kind.describe(key),
        delivery_failed=kind.delivery_failed(key),
    )


def _login(request: HttpRequest, user: User) -> None:
    """Django's ``login``, keeping where to go next: signing in over another citizen's session
    (a service's ``prompt=login`` leaves it until then) empties the session first."""
    target = request.session.get(NEXT)
    login(request, user, backend=backends.PATH)
    if target:
        request.session[NEXT] = target


def signed_in(
    request: HttpRequest,
    user: User,
    *,
    methods: list[str],
    level: str,
    key: DigitalKey | None = None,
    strong: bool = False,
) -> HttpResponse:
    """The end of every sign-in, once ``user`` is logged in and the success recorded: how it was
    made (``amr``, level, the key, whether it is strong), the idle clock, the known-browser
    cookie, and where to go next."""
    signin.record_authentication(
        request, user, methods=methods, level=level, key=key, strong=strong
    )
    request.session.pop(WEAK_ADDED, None)
    request.session[LAST_SEEN] = timezone.now().timestamp()
    browser_id, _new = signin.remember_browser(request, user)
    response = redirect(request.session.pop(NEXT, None) or "keys:my-keys")
    response.set_signed_cookie(
        signin.BROWSER_COOKIE,
        browser_id,
        salt="keys.browser",
        max_age=400 * 24 * 3600,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response


def finish_signin(
    request: HttpRequest,
    user: User,
    *,
    methods: list[str],
    level: str,
    detail: dict[str, Any],
    key: DigitalKey | None = None,
    strong: bool = False,
) -> HttpResponse:
    """A sign-in that is not password and key (a passkey alone, a recovery code): the session,
    the audit event, then what every sign-in ends with (``signed_in``). ``key``, ``strong``: as
    ``signed_in`` (a recovery code: no key, weak)."""
    request.session.pop(PENDING, None)
    _login(request, user)
    audit.record(
        AuditEvent.Action.SIGNIN_SUCCEEDED,
        request=request,
        actor=user,
        citizen=getattr(user, "citizen", None),
        **detail,
    )
    return signed_in(request, user, methods=methods, level=level, key=key, strong=strong)


def forgot_password_view(request: HttpRequest) -> HttpResponse:
    return render(request, "keys/account/forgot_password.html")


def _key_gone_page(request: HttpRequest) -> HttpResponse:
    return render(request, "keys/account/session_ended.html", {"key_gone": True}, status=403)


def citizen_required(view: Callable | None = None, *, lists_keys: bool = False) -> Callable:
    """Signed-in citizens only, with the 15-minute idle timeout (SPEC §3); a session whose
    digital key was removed since it signed in with it ends here (one query), or, for a view
    that reads the account's keys anyway (``lists_keys``: "Mijn digitale sleutels"), in the
    view, from those keys (``signin.end_if_key_gone(request, active=...)``)."""
    if view is None:
        return partial(citizen_required, lists_keys=lists_keys)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated or user.is_staff or not hasattr(user, "citizen"):
            return redirect("keys:signin")
        last_seen = request.session.get(LAST_SEEN, 0)
        now = timezone.now().timestamp()
        if now - last_seen > limits.SIGNIN_IDLE_TIMEOUT.total_seconds():
            logout(request)
            return render(request, "keys/account/session_ended.html", status=403)
        if not lists_keys and signin.end_if_key_gone(request):
            return _key_gone_page(request)
        if now - last_seen >= TOUCH_INTERVAL:
            # At most once a minute: a page that changes nothing need not rewrite the session.
            request.session[LAST_SEEN] = now
        return view(request, *args, **kwargs)

    return never_cache(wrapper)


def _probation_text(key: DigitalKey) -> str:
    """What the citizen reads about a key on probation: until when (Brussels time), and why."""
    return _(
        "The digital key “%(name)s” was added after a sign-in with a recovery code. Until "
        "%(date)s (Brussels time) it gives at most the level “low”, cannot be used alone and "
        "cannot be used to change your keys, password or mobile number."
    ) % {"name": get_kind(key.kind).label, "date": probation.local_time(key.probation_until)}


def key_signin_required(request: HttpRequest, *, reason: str = "weak") -> HttpResponse | None:
    """``None`` when this session signed in with an active digital key not on probation (see
    ``signin.is_strong``); else the page that says a change needs such a sign-in, with the way
    to make it and come back here (audited). For the views behind ``citizen_required``."""
    if signin.is_strong(request):
        return None
    return refusal_page(request, reason=reason)


def refusal_page(request: HttpRequest, *, reason: str, **context: Any) -> HttpResponse:
    """A change refused (``reason``: ``weak`` session, ``one_key`` already added after a
    recovery, ``probation`` of the key concerned, ``other_key`` to cancel): audited, and a page
    that says why, with a fresh sign-in that comes back here where one would help."""
    audit.record(
        AuditEvent.Action.CHANGE_REFUSED,
        request=request,
        actor=request.user,
        citizen=getattr(request.user, "citizen", None),
        reason=reason,
        page=request.path[:200],
    )
    back = request.get_full_path() if request.method == "GET" else request.path
    return render(
        request,
        "keys/account/key_signin_required.html",
        {"reason": reason, "signin_next": _signin_then(back), **context},
        status=403,
    )


@cache
def _my_keys_reads() -> tuple[PreparedRead[DigitalKey], PreparedRead[AuditEvent]]:
    """The citizen's page's two reads, prepared once (the kinds' relations are known once
    the apps are loaded): the keys, active first, and the last twelve sign-in events."""
    listed = DigitalKey.objects.exclude(state=DigitalKey.State.PENDING)
    if key_relations():
        listed = listed.select_related(*key_relations())
    keys = listed.order_by(
        Case(When(state=DigitalKey.State.ACTIVE, then=0), default=1), "created_at", "pk"
    )
    events = AuditEvent.objects.filter(action__in=ACTIVITY).order_by("-created_at", "-id")
    return PreparedRead(keys, "user_id"), PreparedRead(events, "actor_id", limit=12)


@citizen_required(lists_keys=True)
def my_keys_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    listed_keys, recent_events = _my_keys_reads()
    keys = listed_keys.all(user_id=user.pk)
    for key in keys:
        key.user = user
    active = [k for k in keys if k.state == DigitalKey.State.ACTIVE]
    if signin.end_if_key_gone(request, active={k.pk for k in active}):
        return _key_gone_page(request)
    events = recent_events.all(actor_id=user.pk)
    auth = signin.authentication(request, checked=True) or {}
    return render(
        request,
        "keys/account/my_keys.html",
        {
            "keys": [(k, get_kind(k.kind), get_kind(k.kind).describe(k)) for k in keys],
            "can_remove": len(active) > 1,
            "can_add": bool(addable_kinds({k.kind for k in active})),
            "add_needs_webauthn": all(
                get_kind(k).browser_ceremony for k in addable_kinds({k.kind for k in active})
            ),
            "has_sms": any(k.kind == DigitalKey.Kind.SMS for k in active),
            "strong": bool(auth.get("strong")),
            "signed_in_key_id": auth.get("key_id"),
            "events": events,
            "recovery_codes_enabled": recovery.enabled(),
            "recovery_codes": recovery.status(user) if recovery.enabled() else (0, False),
        },
    )


@citizen_required
@sensitive_post_parameters("current_password")
def remove_key_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(DigitalKey, pk=key_id, user=request.user, state=DigitalKey.State.ACTIVE)
    refused = key_signin_required(request)
    if refused:
        return refused
    form = CurrentPasswordForm(request.POST or None, user=request.user)
    refused = reauth_refused(request)
    if refused:
        return refused
    if request.method == "POST" and form.is_valid():
        try:
            selfservice.remove_key(request, request.user, key)
        except selfservice.LastKeyError:
            messages.error(request, _("You cannot remove your last digital key."))
        else:
            messages.success(
                request,
                _("The digital key “%(name)s” was removed.") % {"name": get_kind(key.kind).label},
            )
        return redirect("keys:my-keys")
    return render(
        request,
        "keys/account/remove_key.html",
        {"form": form, "key": key, "kind": get_kind(key.kind)},
    )


@citizen_required
@sensitive_post_parameters("current_password", "password", "password_confirm")
def change_password_view(request: HttpRequest) -> HttpResponse:
    refused = key_signin_required(request)
    if refused:
        return refused
    form = NewPasswordForm(request.POST or None, user=request.user)
    refused = reauth_refused(request)
    if refused:
        return refused
    if request.method == "POST" and form.is_valid():
        selfservice.change_password(request, request.user, form.cleaned_data["password"])
        update_session_auth_hash(request, request.user)
        messages.success(request, _("Your password was changed."))
        return redirect("keys:my-keys")
    return render(request, "keys/account/change_password.html", {"form": form})


@citizen_required
@sensitive_post_parameters("current_password")
def add_key_view(request: HttpRequest) -> HttpResponse:
    """Activate another key: the wizard's key choice, without the paper code but with the
    password, since a new way to sign in is added."""
    active = set(
        request.user.digital_keys.filter(state=DigitalKey.State.ACTIVE).values_list(
            "kind", flat=True
        )
    )
    addable = addable_kinds(active)
    if not addable:
        return redirect("keys:my-keys")
    strong = signin.is_strong(request)
    if not strong:
        refused = _weak_add_refused(request)
        if refused:
            return refused
    form = AddKeyForm(
        request.POST or None,
        excluded_kinds=tuple(kind for kind in KINDS if kind not in addable),
        citizen=request.user.citizen,
        user=request.user,
    )
    refused = reauth_refused(request)
    if refused:
        return refused
    if request.method == "POST" and form.is_valid():
        key = flow.enrol_key(
            request.user,
            form.cleaned_data["kind"],
            None,
            phone=form.cleaned_data["phone"],
            probation=not strong,
        )
        request.session[ADDING] = key.pk
        refused = _resend_limits(request, key, resend=False)
        if refused:
            return refused
        challenges.start_verification(key, request, announce=key.codes.exists())
        return redirect("keys:add-key-verify")
    return render(
        request,
        "keys/account/add_key.html",
        {
            "form": form,
            "citizen": request.user.citizen,
            "terms_version": limits.TERMS_VERSION,
            "probation_hours": _probation_hours(),
            "weak": not strong,
        },
    )


def _probation_hours() -> int:
    return int(limits.RECOVERY_KEY_PROBATION.total_seconds() // 3600)


def _weak_add_refused(request: HttpRequest) -> HttpResponse | None:
    """A weak session adds one key, and none while the account has one on probation."""
    if request.session.get(WEAK_ADDED) or probation.key_on_probation(request.user) is not None:
        return refusal_page(request, reason="one_key")
    return None


@citizen_required
@sensitive_post_parameters("code")
def add_key_verify_view(request: HttpRequest) -> HttpResponse:
    key = DigitalKey.objects.filter(
        pk=request.session.get(ADDING), user=request.user, state=DigitalKey.State.PENDING
    ).first()
    if key is None:
        return redirect("keys:my-keys")
    on_probation = not signin.is_strong(request)
    if on_probation:
        refused = _weak_add_refused(request)
        if refused:
            return refused
    kind = get_kind(key.kind)
    if request.method == "POST" and "resend" in request.POST:
        refused = _resend_limits(request, key)
        if refused:
            return refused
        challenges.start_verification(key, request, announce=True)
        return redirect("keys:add-key-verify")
    form = VerifyForm(
        request.POST or None,
        label=kind.code_label,
        check=partial(flow.confirm_key, key, request=request, probation=on_probation),
        digits=kind.code_digits,
        no_answer=kind.ceremony_no_answer,
    )
    if request.method == "POST":
        refused = check_limits(
            request, [("verify:ip", audit.client_ip(request)), ("verify:key", key.pk)]
        )
        if refused:
            return refused
        if form.is_valid():
            request.session.pop(ADDING, None)
            messages.success(
                request,
                _("The digital key “%(name)s” is activated.") % {"name": kind.label},
            )
            if on_probation:
                request.session[WEAK_ADDED] = key.pk
                messages.warning(request, _probation_text(key))
            return redirect("keys:my-keys")
    context = {
        "form": form,
        "key": key,
        "kind": kind,
        "key_target": kind.describe(key),
        "probation": on_probation,
        "probation_hours": _probation_hours(),
    }
    context.update(kind.setup_context(key))
    context["delivery_failed"] = kind.delivery_failed(key)
    return render(request, "keys/account/add_key_verify.html", context)


@citizen_required
@sensitive_post_parameters("current_password")
def change_phone_view(request: HttpRequest) -> HttpResponse:
    """A new mobile number for the SMS key: the password first, then a code to the new number."""
    if not request.user.digital_keys.filter(kind="sms", state=DigitalKey.State.ACTIVE).exists():
        return redirect("keys:my-keys")
    refused = key_signin_required(request)
    if refused:
        return refused
    form = PhoneChangeForm(request.POST or None, user=request.user)
    refused = reauth_refused(request)
    if refused:
        return refused
    if request.method == "POST" and form.is_valid():
        pending = selfservice.start_phone_change(request.user, form.cleaned_data["phone"])
        request.session[PHONE] = pending.pk
        refused = _resend_limits(request, pending, resend=False)
        if refused:
            return refused
        challenges.start_verification(pending, request, announce=pending.codes.exists())
        return redirect("keys:change-phone-verify")
    return render(request, "keys/account/change_phone.html", {"form": form})


@citizen_required
@sensitive_post_parameters("code")
def change_phone_verify_view(request: HttpRequest) -> HttpResponse:
    pending = DigitalKey.objects.filter(
        pk=request.session.get(PHONE), user=request.user, kind="sms", state=DigitalKey.State.PENDING
    ).first()
    if pending is None:
        return redirect("keys:my-keys")
    refused = key_signin_required(request)
    if refused:
        return refused
    form = VerifyForm(
        request.POST or None,
        label=_("Registration code"),
        check=partial(selfservice.confirm_phone_change, request, request.user, pending),
    )
    if request.method == "POST":
        refused = check_limits(
            request, [("verify:ip", audit.client_ip(request)), ("verify:key", pending.pk)]
        )
        if refused:
            return refused
        if form.is_valid():
            request.session.pop(PHONE, None)
            messages.success(request, _("Your mobile number was changed."))
            return redirect("keys:my-keys")
    kind = get_kind("sms")
    return render(
        request,
        "keys/account/change_phone_verify.html",
        {
            "form": form,
            "key_target": kind.describe(pending),
            "delivery_failed": kind.delivery_failed(pending),
        },
    )


@require_POST
def signout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        audit.record(AuditEvent.Action.SIGNED_OUT, request=request, actor=request.user)
    logout(request)
    return render(request, "keys/account/signed_out.html")


@require_POST
@citizen_required
def signout_everywhere_view(request: HttpRequest) -> HttpResponse:
    selfservice.sign_out_everywhere(request, request.user)
    logout(request)
    return render(request, "keys/account/signed_out.html", {"everywhere": True})


def _signin_then(path: str) -> str:
    """The sign-in page, which comes back to ``path`` once signed in."""
    return f"{reverse('keys:signin')}?{urlencode({'next': path})}"


def cancel_key_view(request: HttpRequest, key_id: int) -> HttpResponse:
    """The link of the notice about a key added after a recovery: cancel it, from a session
    signed in with another active key (not on probation). Not signed in: the sign-in first,
    which comes back here."""
    if not request.user.is_authenticated:
        return redirect(_signin_then(reverse("keys:cancel-key", kwargs={"key_id": key_id})))
    return _cancel_key(request, key_id)


@citizen_required
def _cancel_key(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(DigitalKey, pk=key_id, user=request.user)
    kind = get_kind(key.kind)
    if key.state != DigitalKey.State.ACTIVE or not key.in_probation():
        messages.info(
            request,
            _("The digital key “%(name)s” is no longer on probation: nothing to cancel.")
            % {"name": kind.label},
        )
        return redirect("keys:my-keys")
    if not probation.may_cancel(request, key, signin.authentication(request, checked=True)):
        return refusal_page(request, reason="other_key")
    if request.method == "POST":
        if probation.cancel(request, request.user, key):
            messages.success(
                request,
                _(
                    "The digital key “%(name)s” was cancelled. It can no longer be used, and "
                    "every session signed in with it has ended."
                )
                % {"name": kind.label},
            )
        return redirect("keys:my-keys")
    return render(
        request,
        "keys/account/cancel_key.html",
        {
            "key": key,
            "kind": kind,
            "target": kind.describe(key),
            "until": probation.local_time(key.probation_until),
        },
    )
