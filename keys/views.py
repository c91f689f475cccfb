"""The citizen's pages: the activation link, the wizard, the final page.

Views stay thin: secrets are checked and states changed in ``keys.services.activation``. The
wizard keeps no secret in the session: no code, no password. What the citizen has achieved (code
accepted, account made, key active) lives in the database, so a reload, the Back button, a second
tab or an expired session never loses it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from formtools.wizard.forms import ManagementForm
from formtools.wizard.storage.session import SessionStorage
from formtools.wizard.views import NamedUrlSessionWizardView

from keys import audit, backends, ratelimit
from keys.conf import limits
from keys.digital_keys import KINDS, addable_kinds, get_kind
from keys.forms import (
    AccountForm,
    ActivatedForm,
    ActivationCodeForm,
    KeyChoiceForm,
    VerifyForm,
    phone_initial,
)
from keys.models import Activation, AuditEvent, DigitalKey, RecoveryCode
from keys.prepared import PreparedRead
from keys.services import activation as flow
from keys.services import challenges, recovery, selfservice

MODEL_BACKEND = backends.PATH
#: The idle clocks (wizard, signed-in pages) are moved on at most this often, so a page that
#: changes nothing does not rewrite the session (a database write a request otherwise); the
#: timeouts are therefore exact to within this.
TOUCH_INTERVAL = 60
SESSION_KEY = "csam_wizard"
DONE_SESSION_KEY = "csam_done"

STAGES = [
    ("code", gettext_lazy("Enter activation code")),
    ("key", gettext_lazy("Choose your digital key")),
    ("verify", gettext_lazy("Activate your digital key")),
]
STAGE_OF_STEP = {"code": 0, "key": 1, "account": 1, "verify": 2, "activated": 2}


def home(request: HttpRequest) -> HttpResponse:
    """What the service is and what the citizen needs to activate their keys."""
    return render(request, "keys/home.html")


def terms(request: HttpRequest) -> HttpResponse:
    """The terms of use, in the version the citizen accepts."""
    return render(request, "keys/terms.html", {"version": limits.TERMS_VERSION})


class WizardSession:
    """The wizard's own session data: ids and choices, never a secret."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.data: dict[str, Any] | None = request.session.get(SESSION_KEY)

    @classmethod
    def bind(cls, request: HttpRequest, activation: Activation) -> None:
        """Start a fresh session for this activation (a new session key against fixation)."""
        request.session.flush()
        request.session[SESSION_KEY] = {
            "activation_id": activation.pk,
            "code_verified": False,
            "kind": "",
            "phone": "",
            "key_id": None,
            "activated_kinds": [],
            "password_set": False,
            "last_seen": timezone.now().timestamp(),
        }

    def __getitem__(self, name: str) -> Any:
        return self.data[name] if self.data else None

    def update(self, **values: Any) -> None:
        if self.data is None:
            raise RuntimeError("The wizard session is not bound to an activation.")
        self.data.update(values)
        self.request.session[SESSION_KEY] = self.data

    @property
    def idle_too_long(self) -> bool:
        idle = timezone.now().timestamp() - (self["last_seen"] or 0)
        return idle > limits.WIZARD_IDLE_TIMEOUT.total_seconds()

    def touch(self) -> None:
        """Move the idle clock on, at most once every ``TOUCH_INTERVAL`` seconds."""
        now = timezone.now().timestamp()
        if now - (self["last_seen"] or 0) >= TOUCH_INTERVAL:
            self.update(last_seen=now)


class QuietSessionStorage(SessionStorage):
    """formtools' session storage, but the session is saved only when the wizard's data really
    changed: the stock storage marks the session modified on every read, so every page of the
    wizard, a GET included, rewrote the session row."""

    def _get_data(self) -> dict:
        return self.request.session[self.prefix]

    def _set_data(self, value: dict) -> None:
        if self.request.session.get(self.prefix) != value:
            self.request.session[self.prefix] = value

    data = property(_get_data, _set_data)

    def _set_current_step(self, step: str | None) -> None:
        if self.data[self.step_key] != step:
            self.data[self.step_key] = step
            self.request.session.modified = True

    def set_step_data(self, step: str, cleaned_data: Any) -> None:
        super().set_step_data(step, cleaned_data)
        self.request.session.modified = True

    def set_step_files(self, step: str, files: Any) -> None:
        super().set_step_files(step, files)
        if files:
            self.request.session.modified = True

    def _set_extra_data(self, extra_data: dict) -> None:
        super()._set_extra_data(extra_data)
        self.request.session.modified = True


def _link_error(request: HttpRequest, status: str, activation: Activation | None) -> HttpResponse:
    http_status = {"unknown": 404, "locked": 403}.get(status, 410)
    return render(
        request,
        "keys/link_error.html",
        {"status": status, "activation": activation},
        status=http_status,
    )


@never_cache
def activation_link(request: HttpRequest, token: str) -> HttpResponse:
    """Check the e-mailed link, bind its activation to a fresh session and start the wizard.

    The token leaves the URL at once (a redirect), so it never reaches a Referer header or the
    browser history of later pages.
    """
    refused = ratelimit.check_limits(request, [("link:ip", audit.client_ip(request))])
    if refused:
        return refused
    activation = flow.find_by_token(token)
    status = flow.link_status(activation, request)
    if status != flow.LinkStatus.VALID:
        if activation is not None:
            audit.record(
                AuditEvent.Action.LINK_REFUSED,
                request=request,
                activation=activation,
                status=status,
            )
        return _link_error(request, status, activation)
    WizardSession.bind(request, activation)
    flow.open_link(activation, request)
    return redirect("keys:wizard-step", step="code")


def _signed_in_as(request: HttpRequest, activation: Activation) -> bool:
    user = request.user
    return (
        user.is_authenticated
        and activation.citizen.account_id is not None
        and user.pk == activation.citizen.account_id
    )


def needs_account(wizard: ActivationWizard) -> bool:
    """The account step: to create the account, or, when the account is older than this
    activation (a reissue after a forgotten password), to choose a new password once."""
    account = wizard.citizen.account
    if account is None:
        return True
    return account.date_joined < wizard.activation.created_at and not wizard.ws["password_set"]


# The wizard's reads on every request, their SQL built once per connection (keys/prepared.py):
# the activation with its citizen and account (not the office, which no step shows), and the
# key this session is enrolling.
_WIZARD_ACTIVATION = PreparedRead(
    Activation.objects.select_related("citizen", "citizen__account"), "pk"
)
_WIZARD_KEY = PreparedRead(DigitalKey.objects.all(), "pk", "user_id")
_ACTIVE_KINDS = PreparedRead(DigitalKey.objects.only("kind"), "user_id", "state")
_ANY_RECOVERY_CODE = PreparedRead(RecoveryCode.objects.only("pk"), "user_id")


@method_decorator(never_cache, name="dispatch")
@method_decorator(
    sensitive_post_parameters(
        "code-activation_code", "account-password", "account-password_confirm", "verify-code"
    ),
    name="dispatch",
)
class ActivationWizard(NamedUrlSessionWizardView):
    """The steps of SPEC §2, driven by django-formtools.

    Unlike a stock wizard, every step commits its effect when it is posted (the code is redeemed,
    the account created, the key confirmed), nothing secret is stored as step data, and the steps
    the citizen may see are derived from what the database says was achieved: a forged
    ``wizard_goto_step`` or ``current_step`` cannot skip a step.
    """

    storage_name = "keys.views.QuietSessionStorage"
    form_list = [
        ("code", ActivationCodeForm),
        ("key", KeyChoiceForm),
        ("account", AccountForm),
        ("verify", VerifyForm),
        ("activated", ActivatedForm),
    ]
    condition_dict = {"account": needs_account}
    templates = {
        "code": "keys/wizard/code.html",
        "key": "keys/wizard/key.html",
        "account": "keys/wizard/account.html",
        "verify": "keys/wizard/verify.html",
        "activated": "keys/wizard/activated.html",
    }

    # --- binding and guards ----------------------------------------------------------------

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.ws = WizardSession(request)
        if self.ws.data is None:
            return render(request, "keys/no_activation.html", status=403)
        if self.ws.idle_too_long:
            request.session.flush()
            return render(request, "keys/session_expired.html", status=403)
        # A prepared get(): about 0.5 ms of CPU a request less than building the SQL each time.
        try:
            activation = _WIZARD_ACTIVATION.get(pk=self.ws["activation_id"])
        except Activation.DoesNotExist:
            activation = None
        status = flow.link_status(activation, request)
        if status == flow.LinkStatus.COMPLETED and _signed_in_as(request, activation):
            # The session that completed the activation was signed in then: it may activate
            # another key, as the seed's "Een andere digitale sleutel activeren" offers.
            status = flow.LinkStatus.VALID
        if status != flow.LinkStatus.VALID:
            request.session.flush()
            return _link_error(request, status, activation)
        self.activation = activation
        self.citizen = activation.citizen
        self.ws.touch()
        return super().dispatch(request, *args, **kwargs)

    def _key(self) -> DigitalKey | None:
        """The key this session is enrolling, read once per request (the steps' guard, the form
        and the page all ask; ``make bench`` counted three identical queries a request)."""
        key_id = self.ws["key_id"]
        if not key_id or self.citizen.account_id is None:
            return None
        cached = getattr(self, "_key_cache", None)
        if cached is not None and cached[0] == (key_id, self.citizen.account_id):
            return cached[1]
        try:
            key = _WIZARD_KEY.get(pk=key_id, user_id=self.citizen.account_id)
        except DigitalKey.DoesNotExist:
            key = None
        if key is not None:
            # Its account and activation are the ones this request has already read (with the
            # citizen): no second read of them, nor of the citizen for the audit events.
            key.user = self.citizen.account
            if key.activation_id == self.activation.pk:
                key.activation = self.activation
        self._key_cache = ((key_id, self.citizen.account_id), key)
        return key

    def reachable_steps(self) -> list[str]:
        """The steps this session has earned, in order; the last is where it stands."""
        steps = ["code"]
        if not self.ws["code_verified"]:
            return steps
        steps.append("key")
        if not self.ws["kind"]:
            return steps
        if needs_account(self):
            steps.append("account")
            return steps
        key = self._key()
        if key is not None and key.state == DigitalKey.State.ACTIVE:
            steps.append("activated")
        else:
            steps.append("verify")
        return steps

    def _go(self, step: str) -> HttpResponseRedirect:
        self.storage.current_step = step
        return redirect(self.get_step_url(step))

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        reachable = self.reachable_steps()
        step = kwargs.get("step")
        if step not in self.get_form_list() or step not in reachable:
            return self._go(reachable[-1])
        self.storage.current_step = step
        if step == "verify":
            self._ensure_key()
        return self.render(self.get_form())

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        reachable = self.reachable_steps()
        goto = request.POST.get("wizard_goto_step")
        if goto:
            return self._go(goto if goto in reachable else reachable[-1])
        management = ManagementForm(request.POST, prefix=self.prefix)
        step = kwargs.get("step")
        if not management.is_valid() or management.cleaned_data["current_step"] != step:
            return self._go(step if step in reachable else reachable[-1])
        if step not in self.get_form_list() or step not in reachable:
            return self._go(reachable[-1])
        self.storage.current_step = step
        refused = self._check_post_limits(step)
        if refused:
            return refused
        if step == "verify" and "resend" in request.POST:
            return self._resend()
        form = self.get_form(data=request.POST)
        if not form.is_valid():
            return self.render(form)
        return getattr(self, f"_after_{step}")(form)

    def _check_post_limits(self, step: str) -> HttpResponse | None:
        ip = audit.client_ip(self.request)
        if step == "code" and not self.ws["code_verified"]:
            checks = [("code:ip", ip), ("code:activation", self.activation.pk)]
        elif step == "verify" and "resend" in self.request.POST:
            checks = [("resend:ip", ip)]
        elif step == "verify":
            checks = [("verify:ip", ip), ("verify:key", self.ws["key_id"] or self.activation.pk)]
        else:
            return None
        return ratelimit.check_limits(self.request, checks, self.activation)

    # --- what each step does once posted -------------------------------------------------

    def _after_code(self, form: ActivationCodeForm) -> HttpResponse:
        self.ws.update(code_verified=True)
        return self._go("key")

    def _after_key(self, form: KeyChoiceForm) -> HttpResponse:
        kind, phone = form.cleaned_data["kind"], form.cleaned_data["phone"]
        changed = kind != self.ws["kind"] or phone != self.ws["phone"]
        self.ws.update(kind=kind, phone=phone, key_id=None if changed else self.ws["key_id"])
        flow.accept_terms(self.activation, self.request)
        if needs_account(self):
            return self._go("account")
        self._enter_verification()
        return self._go("verify")

    def _after_account(self, form: AccountForm) -> HttpResponse:
        if self.citizen.account is not None:
            selfservice.reset_password_with_activation(
                self.request, self.activation, form.cleaned_data["password"]
            )
            self.ws.update(password_set=True)
            self._enter_verification()
            return self._go("verify")
        try:
            account = flow.create_account(
                self.activation,
                form.cleaned_data["username"],
                form.cleaned_data["password"],
                self.request,
            )
        except flow.UsernameTaken:
            form.add_error("username", _("This username is not available. Choose another one."))
            return self.render(form)
        # The citizen's account is the one create_account made or found (no need to read the
        # citizen and the account back).
        self.citizen.account = account
        self._enter_verification()
        return self._go("verify")

    def _after_verify(self, form: VerifyForm) -> HttpResponse:
        # Completed by this request's confirm_key (which sets it on this object), or else read
        # again, its state only (a second tab may have completed it): the citizen and account
        # this request read stay (an account, once made, is the citizen's for good).
        if self.activation.state != Activation.State.COMPLETED:
            self.activation.refresh_from_db(fields=["state"])
        if self.activation.state == Activation.State.COMPLETED and not _signed_in_as(
            self.request, self.activation
        ):
            # The first key completes the activation: from now on its link and code are dead,
            # and only this session, signed in as the citizen who just proved password and key,
            # may activate another key. It ends with the wizard (automatic sign-out).
            login(self.request, self.citizen.account, backend=MODEL_BACKEND)
        kinds = [k for k in self.ws["activated_kinds"] if k != self.ws["kind"]]
        self.ws.update(activated_kinds=[*kinds, self.ws["kind"]])
        return self._go("activated")

    def _after_activated(self, form: ActivatedForm) -> HttpResponse:
        if form.cleaned_data["next_action"] == "another" and self._remaining_kinds():
            self.ws.update(kind="", phone="", key_id=None)
            return self._go("key")
        return self._finish()

    # --- keys and challenges -----------------------------------------------------------------

    def _ensure_key(self) -> DigitalKey:
        key = self._key()
        if key is None or key.kind != self.ws["kind"]:
            key = flow.enrol_key(
                self.citizen.account, self.ws["kind"], self.activation, phone=self.ws["phone"]
            )
            self.ws.update(key_id=key.pk)
        return key

    def _enter_verification(self) -> None:
        """Enrol the chosen key and send it a fresh code.

        Choosing a key again after "Annuleren" sends a new code, as the seed promises ("druk op
        'Annuleren' en vraag een nieuwe code aan"); within the cooldown the page says how many
        seconds to wait, and the old code stays valid meanwhile.
        """
        key = self._ensure_key()
        had_code = get_kind(key.kind).delivers_codes and key.codes.exists()
        challenges.start_verification(key, self.request, announce=had_code)

    def _resend(self) -> HttpResponse:
        key = self._ensure_key()
        challenges.start_verification(key, self.request, announce=True)
        return self._go("verify")

    def _remaining_kinds(self) -> list[str]:
        return addable_kinds(self._active_kinds())

    def _active_kinds(self) -> set[str]:
        if self.citizen.account_id is None:
            return set()
        keys = _ACTIVE_KINDS.all(user_id=self.citizen.account_id, state=DigitalKey.State.ACTIVE)
        return {key.kind for key in keys}

    def _finish(self) -> HttpResponse:
        """End the session (automatic sign-out) and show the final page."""
        kinds = list(self.ws["activated_kinds"] or [self.ws["kind"]])
        self.storage.reset()
        self.request.session.flush()
        self.request.session[DONE_SESSION_KEY] = kinds
        return redirect("keys:done")

    # --- formtools hooks ---------------------------------------------------------------------

    def get_template_names(self) -> list[str]:
        return [self.templates[self.steps.current]]

    def get_form_initial(self, step: str) -> dict:
        if step == "key":
            return {
                "kind": self.ws["kind"] or None,
                "phone": self.ws["phone"] or phone_initial(self.citizen),
                "accept_terms": False,
            }
        return {}

    def get_form_kwargs(self, step: str | None = None) -> dict:
        if step == "code":
            return {
                "check": partial(
                    flow.redeem_activation_code, self.activation.pk, request=self.request
                ),
                "verified": bool(self.ws["code_verified"]),
            }
        if step == "key":
            addable = self._remaining_kinds()
            excluded = tuple(kind for kind in KINDS if kind not in addable)
            return {"excluded_kinds": excluded, "citizen": self.citizen}
        if step == "account":
            return {"citizen": self.citizen, "existing": self.citizen.account}
        if step == "verify":
            key = self._key()
            if key is None:
                return {}
            kind = get_kind(key.kind)
            return {
                "label": kind.code_label,
                "digits": kind.code_digits,
                "no_answer": kind.ceremony_no_answer,
                "check": partial(flow.confirm_key, key, request=self.request, fresh=True),
            }
        return {}

    def get_context_data(self, form: Any, **kwargs: Any) -> dict:
        context = super().get_context_data(form=form, **kwargs)
        step = self.steps.current
        stage = STAGE_OF_STEP[step]
        context.update(
            {
                "stages": [
                    {
                        "label": label,
                        "state": "done" if i < stage else "current" if i == stage else "todo",
                    }
                    for i, (_name, label) in enumerate(STAGES)
                ],
                "stage_number": stage + 1,
                "activation": self.activation,
                "citizen": self.citizen,
                "code_verified": bool(self.ws["code_verified"]),
                "terms_version": limits.TERMS_VERSION,
            }
        )
        key = self._key()
        if key is not None:
            kind = get_kind(key.kind)
            context.update({"key": key, "kind": kind, "key_target": kind.describe(key)})
            if step == "verify":
                context.update(kind.setup_context(key))
                context["delivery_failed"] = kind.delivery_failed(key)
            if step == "activated":
                remaining = self._remaining_kinds()
                context["can_add_another"] = bool(remaining)
                # Only kinds the browser must make (``browser_ceremony``) left: offered where
                # it can.
                context["another_needs_webauthn"] = all(
                    get_kind(k).browser_ceremony for k in remaining
                )
                # Recovery codes (issue 13), offered once a first key is active.
                context["offer_recovery_codes"] = (
                    recovery.enabled() and _ANY_RECOVERY_CODE.first(user_id=key.user_id) is None
                )
        return context

    def render_done(self, form: Any, **kwargs: Any) -> HttpResponse:
        return self._finish()


@never_cache
def done(request: HttpRequest) -> HttpResponse:
    """SPEC §2 step 7: the key is activated and the citizen is signed out."""
    kinds = [k for k in request.session.get(DONE_SESSION_KEY, []) if k in KINDS]
    if not kinds:
        return redirect("keys:home")
    return render(
        request,
        "keys/done.html",
        {"kind": get_kind(kinds[-1]), "kinds": [get_kind(k) for k in kinds]},
    )
