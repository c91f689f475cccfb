"""Toegangssleutel (passkey): a WebAuthn credential made by the citizen's device (issue 13).

Nothing typed: the page's static script (``static/keys/passkey.js``) asks the browser to make or
use the passkey with the options this module puts in the page (a ``<script
type="application/json">`` block, never executed), and posts the browser's answer as the "code"
of the key-module interface; :meth:`PasskeyKind.verify` checks it with py_webauthn.

- Registration asks for a resident (discoverable) key where the authenticator can make one and
  requires user verification (a PIN, a fingerprint, the device's unlock).
- Challenges are random, kept in the session (a challenge is no secret), bound to the purpose
  and the key they were made for, expire after ``CHALLENGE_TTL`` and are taken out of the
  session by the first answer, right or wrong (single use). The username-less sign-in's
  challenges are the exception: they are kept in the database as a digest
  (``DiscoverChallenge``), since the request that fetches them must not write the session.
- The relying party id and the expected origin come from ``WEBAUTHN_RP_ID`` and
  ``WEBAUTHN_ORIGIN``, by default the host and origin of ``SITE_URL``.
- The signature counter is kept; an answer whose counter does not go up (while either counter
  is not zero) comes from a copy of the authenticator (WebAuthn §6.1.1): it is refused and
  audited (``passkey_clone_detected``).
- A citizen may have several passkeys (one per device): each is a key of its own
  (``several_per_account``) with the name the citizen gave it and its last use.
- amr ``swk`` (RFC 8176: proof of possession of a software-secured key), never ``hwk``:
  registration asks for no attestation (py_webauthn's default, "none") and checks none, so
  nothing proves that the key is bound to hardware, and synced passkeys are copied between a
  citizen's devices. Level ``substantial`` (FAS Level400), like the app, SMS and e-mail keys:
  this site gives no "high" (Level450 itsme, Level500 eID card).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import json_script
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from keys import audit
from keys.digital_keys.base import KeyKind, Outcome, VerifyResult
from keys.digital_keys.passkey.models import DiscoverChallenge, PasskeyCredential
from keys.models import DigitalKey

logger = logging.getLogger(__name__)


def _webauthn() -> Any:
    """The ``webauthn`` library, imported on first use: with its dependencies (cbor2,
    pyOpenSSL, ...) it weighs about 3 MB per worker, and most workers never see a passkey
    (``tests/test_kind_footprint.py`` checks that the other pages do not load it)."""
    import webauthn
    import webauthn.helpers.exceptions
    import webauthn.helpers.structs

    return webauthn


def _answer_errors() -> tuple[type[Exception], ...]:
    """What a browser's malformed or forged answer raises in the library's checks."""
    return (_webauthn().helpers.exceptions.WebAuthnException, ValueError, TypeError, KeyError)


def bytes_to_base64url(value: bytes) -> str:
    """Base64url without padding, as WebAuthn writes binary values (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(value).decode("ascii").rstrip("=")


def base64url_to_bytes(value: str) -> bytes:
    """The inverse of ``bytes_to_base64url`` (padding optional); ValueError when malformed."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


#: The kind's name, as stored in ``DigitalKey.kind``.
KIND = "passkey"

#: The session key of the one challenge waiting for an answer.
CHALLENGE_SESSION_KEY = "csam_passkey_challenge"
#: How long a challenge may wait for the browser's answer (seconds); the browser's own
#: timeout is the same.
CHALLENGE_TTL = 300
#: The longest answer accepted from a browser (characters of JSON).
MAX_RESPONSE_LENGTH = 20_000
NAME_MAX_LENGTH = 60

REGISTER = "register"
AUTHENTICATE = "authenticate"
#: What the citizen reads when the passkey's answer is refused (a bad signature, a counter that
#: went back, an expired challenge).
REFUSED = _("Your passkey could not be checked. Try again, or choose another digital key.")
#: The kind's events in the audit trail (``KeyKind.audit_actions``).
CLONE_DETECTED = "passkey_clone_detected"
SETTING_CHANGED = "passkey_setting_changed"


def rp_id() -> str:
    """The relying party id: ``WEBAUTHN_RP_ID``, else the host name of ``SITE_URL``."""
    return settings.WEBAUTHN_RP_ID or (urlsplit(settings.SITE_URL).hostname or "localhost")


def expected_origin() -> str:
    """The origin browsers must report: ``WEBAUTHN_ORIGIN``, else ``SITE_URL``'s origin."""
    if settings.WEBAUTHN_ORIGIN:
        return settings.WEBAUTHN_ORIGIN.rstrip("/")
    parts = urlsplit(settings.SITE_URL)
    return f"{parts.scheme}://{parts.netloc}"


def _store_challenge(request: HttpRequest, purpose: str, key_id: int | None, challenge: bytes):
    request.session[CHALLENGE_SESSION_KEY] = {
        "purpose": purpose,
        "key_id": key_id,
        "challenge": bytes_to_base64url(challenge),
        "expires": timezone.now().timestamp() + CHALLENGE_TTL,
    }


def take_challenge(request: HttpRequest | None, purpose: str, key_id: int | None) -> bytes | None:
    """The challenge waiting in this session for ``purpose`` and ``key_id``, taken out of the
    session whatever the outcome (single use); None when there is none or it expired."""
    if request is None or not hasattr(request, "session"):
        return None
    data = request.session.pop(CHALLENGE_SESSION_KEY, None)
    if not isinstance(data, dict):
        return None
    if data.get("purpose") != purpose or data.get("key_id") != key_id:
        return None
    if float(data.get("expires", 0)) < timezone.now().timestamp():
        return None
    try:
        return base64url_to_bytes(data["challenge"])
    except (KeyError, ValueError, TypeError):
        return None


def _active_credentials(user_id: int) -> list[PasskeyCredential]:
    return list(
        PasskeyCredential.objects.filter(
            key__user_id=user_id,
            key__kind=KIND,
            key__state=DigitalKey.State.ACTIVE,
        )
    )


def _descriptor(credential: PasskeyCredential) -> Any:
    structs = _webauthn().helpers.structs
    transports = []
    for name in credential.transports or []:
        try:
            transports.append(structs.AuthenticatorTransport(name))
        except ValueError:
            continue
    return structs.PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(credential.credential_id), transports=transports or None
    )


def _user_handle(user_id: int, existing: list[PasskeyCredential]) -> str:
    """The account's WebAuthn user handle: random (it must not reveal who the citizen is), the
    same for every passkey of the account."""
    for credential in existing:
        if credential.user_handle:
            return credential.user_handle
    stored = (
        PasskeyCredential.objects.filter(key__user_id=user_id)
        .values_list("user_handle", flat=True)
        .first()
    )
    return stored or bytes_to_base64url(secrets.token_bytes(32))


def registration_options(request: HttpRequest, key: DigitalKey) -> dict[str, Any]:
    """The options of ``navigator.credentials.create()`` for the pending ``key``; its
    challenge waits in the session."""
    user = key.user
    existing = _active_credentials(user.pk)
    handle = _user_handle(user.pk, existing)
    request.session["csam_passkey_user_handle"] = handle
    citizen = getattr(user, "citizen", None)
    webauthn = _webauthn()
    structs = webauthn.helpers.structs
    options = webauthn.generate_registration_options(
        rp_id=rp_id(),
        rp_name=settings.WEBAUTHN_RP_NAME,
        user_id=base64url_to_bytes(handle),
        user_name=user.get_username(),
        user_display_name=citizen.full_name if citizen else user.get_username(),
        timeout=CHALLENGE_TTL * 1000,
        authenticator_selection=structs.AuthenticatorSelectionCriteria(
            resident_key=structs.ResidentKeyRequirement.PREFERRED,
            user_verification=structs.UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[_descriptor(c) for c in existing],
    )
    _store_challenge(request, REGISTER, key.pk, options.challenge)
    return json.loads(webauthn.options_to_json(options))


def authentication_options(request: HttpRequest, key: DigitalKey | None) -> dict[str, Any]:
    """The options of ``navigator.credentials.get()``: for ``key`` (after the password), or
    for any discoverable passkey (``key`` None: sign-in with the passkey alone)."""
    allow = []
    if key is not None:
        credential = PasskeyCredential.objects.filter(key=key).first()
        allow = [_descriptor(credential)] if credential else []
    webauthn = _webauthn()
    options = webauthn.generate_authentication_options(
        rp_id=rp_id(),
        timeout=CHALLENGE_TTL * 1000,
        allow_credentials=allow,
        user_verification=webauthn.helpers.structs.UserVerificationRequirement.REQUIRED,
    )
    if key is None:
        _store_discover_challenge(options.challenge)
    else:
        _store_challenge(request, AUTHENTICATE, key.pk, options.challenge)
    return json.loads(webauthn.options_to_json(options))


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def _store_discover_challenge(challenge: bytes) -> None:
    """Keep a username-less sign-in's challenge (its digest) until ``CHALLENGE_TTL`` is over,
    purging those whose time is over; the session is not touched (``DiscoverChallenge``)."""
    now = timezone.now()
    DiscoverChallenge.objects.filter(expires_at__lt=now).delete()
    DiscoverChallenge.objects.create(
        digest=_digest(challenge), expires_at=now + timedelta(seconds=CHALLENGE_TTL)
    )


def take_discover_challenge(code: str) -> bytes | None:
    """The challenge a browser's answer to a username-less sign-in signed, when this service
    made it and no answer used it yet: its row is deleted whatever the outcome (single use).
    None when the answer names none, or one unknown, used or expired."""
    try:
        client_data = json.loads(code)["response"]["clientDataJSON"]
        challenge = base64url_to_bytes(json.loads(base64url_to_bytes(client_data))["challenge"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    deleted, _rows = DiscoverChallenge.objects.filter(
        digest=_digest(challenge), expires_at__gte=timezone.now()
    ).delete()
    return challenge if deleted else None


def credential_id_of(response: str) -> str:
    """The credential id a browser's answer names (``""`` when it is not one)."""
    try:
        data = json.loads(response)
    except (ValueError, TypeError):
        return ""
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and len(value) <= 1400 else ""


def _refused(request: HttpRequest | None, key: DigitalKey | None, reason: str) -> VerifyResult:
    logger.info("passkey answer refused: %s", reason)
    return VerifyResult(Outcome.REFUSED, message=REFUSED)


class PasskeyKind(KeyKind):
    kind = KIND
    amr = "swk"
    default_level = "substantial"
    label = _("Passkey")
    code_label = _("Passkey")
    activated_title = _("Passkey activated!")
    activated_text = _(
        "Your passkey was made successfully. From now on you can sign in with your username + "
        "password and your passkey: your device asks for your fingerprint, face, PIN or screen "
        "lock."
    )
    instructions_template = "keys/digital_keys/passkey.html"
    ceremony_template = "keys/digital_keys/passkey_form.html"
    ceremony_no_answer = _(
        "Your browser sent no answer from a passkey. Press the button to use your "
        "passkey, or choose another digital key."
    )
    browser_ceremony = True
    script = "keys/passkey.js"
    several_per_account = True
    # a staff member's passkey is asked after the password only, never a key alone (below)
    staff_second_factor = True
    audit_actions = (
        (CLONE_DETECTED, _("Passkey refused: its counter went back (a copied authenticator?)")),
        (SETTING_CHANGED, _("Sign-in with the passkey alone turned on or off")),
    )
    choice_note = _("On this device you can also choose a fourth kind: a passkey.")
    signin_title = _("Sign in with your passkey")
    signin_template = "keys/digital_keys/passkey_signin.html"
    my_keys_template = "keys/digital_keys/passkey_my_keys.html"
    related = ("passkey",)

    def urlpatterns(self) -> list[Any]:
        from keys.digital_keys.passkey.urls import urlpatterns

        return list(urlpatterns)

    def ceremony_data(self, request: HttpRequest, key: DigitalKey, purpose: str) -> str:
        """The options of the ceremony, as a ``<script type="application/json">`` block (data,
        never executed: the CSP allows no inline script) that ``static/keys/passkey.js``
        reads: registration options for a pending key (``purpose`` "activate" or "add"),
        sign-in options for an active one ("signin"). Its challenge waits in the session."""
        if purpose == "signin":
            options, mode = authentication_options(request, key), "get"
        else:
            options, mode = registration_options(request, key), "create"
        return json_script({"mode": mode, "publicKey": options}, "passkey-options")

    def remove_label(self, key: DigitalKey) -> str:
        name = self.describe(key)
        if not name:
            return super().remove_label(key)
        return gettext("Remove the passkey “%(name)s”") % {"name": name}

    @property
    def code_digits(self) -> int:
        return 0

    def choice_help(self, citizen: Any) -> str:
        return str(
            _(
                "Cannot be phished: your phone or computer keeps a key for this site and unlocks "
                "it with your fingerprint, face, PIN or screen lock."
            )
        )

    def describe(self, key: DigitalKey) -> str:
        credential = _credential_of(key)
        return credential.name if credential else ""

    def display_name(self, key: DigitalKey) -> str:
        name = self.describe(key)
        return f"{self.label} “{name}”" if name else str(self.label)

    def verify(
        self, key: DigitalKey, code: str, *, request: HttpRequest | None = None
    ) -> VerifyResult:
        """A pending key: the browser's new credential (registration); an active key: its
        signature over this session's challenge (sign-in)."""
        if not code or len(code) > MAX_RESPONSE_LENGTH:
            return _refused(request, key, "empty or too long")
        if key.state == DigitalKey.State.PENDING:
            return self._register(key, code, request)
        if key.state != DigitalKey.State.ACTIVE:
            return VerifyResult(Outcome.NO_CODE)
        challenge = take_challenge(request, AUTHENTICATE, key.pk)
        if challenge is None:
            return _refused(request, key, "no challenge")
        credential = _credential_of(key)
        if credential is None or credential_id_of(code) != credential.credential_id:
            return _refused(request, key, "another credential")
        return check_assertion(credential, code, challenge, request=request)

    def _register(self, key: DigitalKey, code: str, request: HttpRequest | None) -> VerifyResult:
        challenge = take_challenge(request, REGISTER, key.pk)
        if challenge is None:
            return _refused(request, key, "no challenge")
        handle = request.session.pop("csam_passkey_user_handle", "") if request else ""
        webauthn = _webauthn()
        try:
            verified = webauthn.verify_registration_response(
                credential=code,
                expected_challenge=challenge,
                expected_rp_id=rp_id(),
                expected_origin=expected_origin(),
                require_user_verification=True,
            )
        except _answer_errors() as error:
            return _refused(request, key, type(error).__name__)
        try:
            transports = json.loads(code).get("response", {}).get("transports") or []
        except (ValueError, AttributeError):
            transports = []
        post = getattr(request, "POST", {})
        name = " ".join(str(post.get("passkey_name", "")).split())[:NAME_MAX_LENGTH]
        if not name:
            count = PasskeyCredential.objects.filter(key__user_id=key.user_id).count()
            name = f"{self.label} {count + 1}"
        try:
            with transaction.atomic():
                DigitalKey.objects.select_for_update().filter(pk=key.pk).first()
                if PasskeyCredential.objects.filter(key=key).exists():
                    return VerifyResult(Outcome.OK)
                PasskeyCredential.objects.create(
                    key=key,
                    name=name,
                    credential_id=bytes_to_base64url(verified.credential_id),
                    public_key=verified.credential_public_key,
                    sign_count=verified.sign_count,
                    user_handle=handle or bytes_to_base64url(secrets.token_bytes(32)),
                    transports=[str(t) for t in transports if isinstance(t, str)][:8],
                    aaguid=str(verified.aaguid or "")[:36],
                    backed_up=bool(verified.credential_backed_up),
                    # Never for a key added after a recovery (not alone while on probation),
                    # never for a staff member's passkey, whatever was posted.
                    usernameless=post.get("passkey_usernameless") == "on"
                    and not key.in_probation()
                    and not key.user.is_staff,
                )
        except IntegrityError:
            # This credential is already registered (to this account or another).
            return _refused(request, key, "credential already registered")
        return VerifyResult(Outcome.OK)


def _credential_of(key: DigitalKey) -> PasskeyCredential | None:
    try:
        return key.passkey
    except PasskeyCredential.DoesNotExist:
        return None


def check_assertion(
    credential: PasskeyCredential,
    code: str,
    challenge: bytes,
    *,
    request: HttpRequest | None,
) -> VerifyResult:
    """Check a browser's signature with ``credential`` over ``challenge``, and its counter.

    The counter check is ours (not the library's) so that a copy is told apart from any other
    refusal and audited: the counter must go up unless both it and the stored one are zero
    (authenticators that keep no counter, as synced passkeys do).
    """
    webauthn = _webauthn()
    try:
        verified = webauthn.verify_authentication_response(
            credential=code,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=expected_origin(),
            credential_public_key=bytes(credential.public_key),
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except _answer_errors() as error:
        return _refused(request, credential.key, type(error).__name__)
    with transaction.atomic():
        locked = PasskeyCredential.objects.select_for_update().get(pk=credential.pk)
        new, stored = verified.new_sign_count, locked.sign_count
        if (new or stored) and new <= stored:
            cloned = True
        else:
            cloned = False
            locked.sign_count = new
            locked.backed_up = bool(verified.credential_backed_up)
            locked.save(update_fields=["sign_count", "backed_up"])
    if cloned:
        key = credential.key
        audit.record(
            CLONE_DETECTED,
            request=request,
            actor=key.user,
            citizen=getattr(key.user, "citizen", None),
            kind=key.kind,
            key_id=key.pk,
            sign_count=new,
            stored_sign_count=stored,
        )
        return VerifyResult(Outcome.REFUSED, message=REFUSED)
    credential.sign_count = new
    return VerifyResult(Outcome.OK)


def find_discoverable(code: str) -> PasskeyCredential | None:
    """The active passkey, turned on for signing in alone, that a browser's answer names."""
    credential_id = credential_id_of(code)
    if not credential_id:
        return None
    return (
        PasskeyCredential.objects.select_related("key", "key__user")
        .filter(
            credential_id=credential_id,
            usernameless=True,
            key__state=DigitalKey.State.ACTIVE,
            key__kind=KIND,
        )
        .first()
    )


def user_handle_matches(credential: PasskeyCredential, code: str) -> bool:
    """The user handle a discoverable passkey returns must be the account's (when sent)."""
    try:
        handle = json.loads(code).get("response", {}).get("userHandle")
    except (ValueError, AttributeError):
        return False
    return not handle or handle == credential.user_handle
