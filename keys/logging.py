"""Keep activation link tokens out of the logs.

The e-mailed link is ``/<language>/activeren/<token>/`` (``keys/urls.py``): the token is half of
the citizen's secret, so a request log that records the path would hand it to anybody who can
read the logs. :class:`RedactLinkTokens` rewrites every log record that carries such a path
(message, arguments, traceback, stack) to ``/nl/activeren/[redacted]/``.

Where it is wired:

- Django (``LOGGING`` in ``csam_activation/settings.py``): on the ``django``, ``django.server``
  (runserver's request log) and ``django.request`` loggers, and on every handler, so records of
  any logger that reach a handler are redacted too;
- gunicorn (``csam_activation/gunicorn.conf.py``): on its access and error logs;
- nginx or another proxy in front: its own ``log_format`` (README, *Deploying*).

This module only imports the standard library, so a gunicorn configuration can use it before
Django is set up.
"""

import logging
import re
from collections.abc import Mapping

REDACTED = "[redacted]"

# The path segment before the token, as routed in keys/urls.py ("activeren"), also
# percent-encoded (a token inside a ``next=`` parameter). A test keeps this in step with the URL.
LINK_PATH_SEGMENTS = ("activeren",)

_LINK_TOKEN = re.compile(
    r"(?P<prefix>(?:/|%2[fF])(?:"
    + "|".join(re.escape(segment) for segment in LINK_PATH_SEGMENTS)
    + r")(?:/|%2[fF]))(?P<token>[^/?#&\s\"'<>\\%]+)"
)


# Query parameters that carry an OpenID Connect secret (oidc/): the authorization code on a
# service's callback, an ID token as the logout hint, tokens. Also percent-encoded (in ``next=``).
SECRET_QUERY_PARAMETERS = (
    "code",
    "id_token_hint",
    "id_token",
    "access_token",
    "refresh_token",
    "client_secret",
    "code_verifier",
)

_SECRET_PARAMETER = re.compile(
    r"(?P<prefix>(?:[?&]|%3[fF]|%26)(?:"
    + "|".join(re.escape(name) for name in SECRET_QUERY_PARAMETERS)
    + r")(?:=|%3[dD]))(?P<token>[^&\s\"'<>#%]+)"
)


def redact(text: str) -> str:
    """``text`` with the token of every activation link path, and the value of every query
    parameter of :data:`SECRET_QUERY_PARAMETERS`, replaced by ``[redacted]``."""
    text = _LINK_TOKEN.sub(lambda match: match.group("prefix") + REDACTED, text)
    return _SECRET_PARAMETER.sub(lambda match: match.group("prefix") + REDACTED, text)


def contains_link_token(text: str) -> bool:
    """True when ``text`` holds an activation link path with a token that is not redacted."""
    return any(match.group("token") != REDACTED for match in _LINK_TOKEN.finditer(text))


def contains_secret(text: str) -> bool:
    """True when ``text`` holds a link token or an OpenID Connect secret not redacted."""
    return contains_link_token(text) or any(
        match.group("token") != REDACTED for match in _SECRET_PARAMETER.finditer(text)
    )


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    return value


class RedactLinkTokens(logging.Filter):
    """A logging filter that never drops a record, only removes link tokens from it.

    The record's final message is computed once (``getMessage``); when it holds a token the
    record's ``msg`` becomes the redacted message and its ``args`` are emptied, whatever their
    shape (runserver's tuple, gunicorn's dict of access-log atoms, a request object). A
    traceback or stack is formatted and redacted in the same way.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not fit its format: redact the parts
            record.msg = _redact_value(record.msg)
            if isinstance(record.args, Mapping):
                record.args = {key: _redact_value(value) for key, value in record.args.items()}
            elif isinstance(record.args, tuple):
                record.args = tuple(_redact_value(value) for value in record.args)
        else:
            if contains_secret(message):
                record.msg = redact(message)
                record.args = ()
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if contains_secret(text):
                record.exc_text = redact(text)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
