"""Structured logs: one JSON object a line, with the request's id, and no address in clear.

- :class:`JsonFormatter` (``LOG_FORMAT=json``): ``{"time", "level", "logger", "message",
  "request_id"}`` and ``"exception"`` when the record carries a traceback. ``request_id`` is the
  id of the request being served (:class:`ops.middleware.RequestIdMiddleware` sets it in a
  context variable), ``null`` outside a request (the task worker, a management command).
- :class:`MaskPersonalData`: e-mail addresses become ``ja…@example.be`` and international phone
  numbers ``+32…56`` in the message, its arguments, a traceback and a stack. Link tokens are
  removed before by ``keys.logging.RedactLinkTokens``; both filters sit on every handler of
  ``LOGGING``. Codes and passwords are never logged by the application in the first place.

Only the standard library is imported here, so ``gunicorn.conf.py`` can use the formatter and the
filters before Django is set up: :func:`use_json_for_gunicorn` puts them on gunicorn's own error
and access logs, whose access lines then carry the ``X-Request-ID`` the app answered with.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime

# The id of the request being served; read by the JSON formatter.
request_id_var: ContextVar[str | None] = ContextVar("csam_request_id", default=None)

# Deliberately loose: anything that looks like an address is masked (better a false positive).
_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9._%+\-]{1,64})@(?P<domain>[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)"
)
# An international number as E.164 writes it (the only form the application stores).
_PHONE = re.compile(r"(?<![\w+])\+(?P<digits>\d{8,15})(?!\d)")
ELLIPSIS = "…"


def mask_email(match: re.Match[str]) -> str:
    local = match.group("local")
    return f"{local[: 2 if len(local) > 3 else 1]}{ELLIPSIS}@{match.group('domain')}"


def mask_phone(match: re.Match[str]) -> str:
    digits = match.group("digits")
    return f"+{digits[:2]}{ELLIPSIS}{digits[-2:]}"


def mask(text: str) -> str:
    """``text`` with every e-mail address and international phone number masked."""
    if "@" in text:
        text = _EMAIL.sub(mask_email, text)
    if "+" in text:
        text = _PHONE.sub(mask_phone, text)
    return text


def _mask_value(value: object) -> object:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, bytes):
        return mask(value.decode("utf-8", "replace"))
    return value


class MaskPersonalData(logging.Filter):
    """A filter that never drops a record, only masks e-mail addresses and phone numbers.

    Works like ``keys.logging.RedactLinkTokens``: when the final message holds an address it
    replaces ``msg`` and empties ``args``; a record whose args do not fit its format gets its
    parts masked one by one; a traceback or stack is formatted and masked.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            record.msg = _mask_value(record.msg)
            if isinstance(record.args, Mapping):
                record.args = {key: _mask_value(value) for key, value in record.args.items()}
            elif isinstance(record.args, tuple):
                record.args = tuple(_mask_value(value) for value in record.args)
        else:
            masked = mask(message)
            if masked != message:
                record.msg = masked
                record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, and
    exception (the traceback) or stack when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class GunicornRequestId(logging.Filter):
    """On gunicorn's access log: keep the response's ``X-Request-ID`` (an atom of the record's
    arguments) as ``record.request_id``, before the link-token filter may empty the arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            request_id = record.args.get("{x-request-id}o") or record.args.get("{x-request-id}i")
            if isinstance(request_id, str) and request_id not in ("", "-"):
                record.request_id = request_id
        return True


def use_json_for_gunicorn(glogger: object) -> None:
    """JSON lines, addresses masked, on a gunicorn ``Logger``'s error and access logs.

    For ``gunicorn.conf.py``'s logger class, after its ``setup`` (which gunicorn calls again when
    it reopens its logs, so this may run more than once)::

        if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
            use_json_for_gunicorn(self)
    """
    for log in (glogger.error_log, glogger.access_log):
        for handler in log.handlers:
            handler.setFormatter(JsonFormatter())
            if not any(isinstance(f, MaskPersonalData) for f in handler.filters):
                handler.addFilter(MaskPersonalData())
    access_filters = glogger.access_log.filters
    if not any(isinstance(f, GunicornRequestId) for f in access_filters):
        access_filters.insert(0, GunicornRequestId())  # before the link-token filter
