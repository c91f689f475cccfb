"""The passkey kind of digital key (WebAuthn, issue 13), all in this package:

- ``kind.py``: ``PasskeyKind`` (the key-module interface) and the ceremony (options, challenges
  in the session or, for the username-less sign-in, in the database, checking the browser's
  answer and the signature counter);
- ``models.py``: ``PasskeyCredential``, the credential of a passkey key, and
  ``DiscoverChallenge``, a username-less sign-in's challenge (``app_label`` "keys");
- ``views.py`` and ``urls.py``: sign-in with the passkey alone (the browser's autofill) and
  turning that on or off, mounted in the ``keys`` namespace through ``PasskeyKind.urlpatterns``.

Its templates are ``templates/keys/digital_keys/passkey*.html``, its script
``static/keys/passkey.js``. The registry (``keys.digital_keys``) names ``PasskeyKind``.
"""

from keys.digital_keys.passkey.kind import (
    AUTHENTICATE,
    CHALLENGE_SESSION_KEY,
    CHALLENGE_TTL,
    CLONE_DETECTED,
    KIND,
    MAX_RESPONSE_LENGTH,
    NAME_MAX_LENGTH,
    REGISTER,
    SETTING_CHANGED,
    PasskeyKind,
    authentication_options,
    check_assertion,
    credential_id_of,
    expected_origin,
    find_discoverable,
    registration_options,
    rp_id,
    take_challenge,
    take_discover_challenge,
    user_handle_matches,
)

__all__ = [
    "AUTHENTICATE",
    "CHALLENGE_SESSION_KEY",
    "CHALLENGE_TTL",
    "CLONE_DETECTED",
    "KIND",
    "MAX_RESPONSE_LENGTH",
    "NAME_MAX_LENGTH",
    "REGISTER",
    "SETTING_CHANGED",
    "PasskeyKind",
    "authentication_options",
    "check_assertion",
    "credential_id_of",
    "expected_origin",
    "find_discoverable",
    "registration_options",
    "rp_id",
    "take_challenge",
    "take_discover_challenge",
    "user_handle_matches",
]
