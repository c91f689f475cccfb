"""Sending text messages through a backend, the way Django sends e-mail (SPEC §6).

``SMS_BACKEND`` is ``console``, ``locmem`` (tests: messages land in ``keys.sms.outbox``),
``filebased`` (one JSON file per message in ``SMS_FILE_PATH``), ``http`` (a gateway, with
timeouts) or a dotted path to a class with ``send(to, body)``.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string


class SmsDeliveryError(Exception):
    """The message could not be handed to the SMS service."""


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    sender: str


outbox: list[SmsMessage] = []


class BaseSmsBackend:
    def send(self, message: SmsMessage) -> None:
        raise NotImplementedError


class ConsoleSmsBackend(BaseSmsBackend):
    """Prints messages, for development (``make demo``)."""

    _lock = threading.Lock()

    def send(self, message: SmsMessage) -> None:
        with self._lock:
            sys.stdout.write(
                f"----- SMS from {message.sender} to {message.to} -----\n{message.body}\n"
                f"{'-' * 40}\n"
            )
            sys.stdout.flush()


class LocmemSmsBackend(BaseSmsBackend):
    """Keeps messages in ``keys.sms.outbox``, for tests."""

    def send(self, message: SmsMessage) -> None:
        outbox.append(message)


class FileBasedSmsBackend(BaseSmsBackend):
    """Writes one JSON file per message (``to``, ``body``, ``sender``, ``sent_at``)."""

    def send(self, message: SmsMessage) -> None:
        directory = Path(settings.SMS_FILE_PATH)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            name = f"{timezone.now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.json"
            payload = {
                "to": message.to,
                "body": message.body,
                "sender": message.sender,
                "sent_at": timezone.now().isoformat(),
            }
            temporary = directory / f".{name}.tmp"
            temporary.write_text(json.dumps(payload), encoding="utf-8")
            temporary.replace(directory / name)
        except OSError as error:
            raise SmsDeliveryError(str(error)) from error


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: ``redirect_request`` returning None is urllib's documented
    way to refuse one, and the 3xx answer then raises ``HTTPError`` like any other error.
    Following would send the bearer token (and the code) to wherever the answer points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


class HttpSmsBackend(BaseSmsBackend):
    """Posts ``{"to", "body", "sender"}`` as JSON to ``SMS_GATEWAY_URL`` with a bearer token.

    Any answer other than 2xx (a redirect included: it is never followed), a network error or a
    timeout (``SMS_GATEWAY_TIMEOUT`` seconds) raises :class:`SmsDeliveryError`, so the outbox
    tries the message again later.
    """

    def send(self, message: SmsMessage) -> None:
        url = settings.SMS_GATEWAY_URL
        if not url.startswith(("https://", "http://")):
            raise SmsDeliveryError("SMS_GATEWAY_URL is not set to an http(s) URL")
        data = json.dumps(
            {"to": message.to, "body": message.body, "sender": message.sender}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url,
            data=data,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {settings.SMS_GATEWAY_TOKEN}",
            },
        )
        try:
            with _OPENER.open(request, timeout=settings.SMS_GATEWAY_TIMEOUT) as response:
                if not 200 <= response.status < 300:
                    raise SmsDeliveryError(f"gateway answered {response.status}")
        except urllib.error.HTTPError as error:
            raise SmsDeliveryError(f"gateway answered {error.code}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise SmsDeliveryError(type(error).__name__) from error


SHORT_NAMES = {
    "console": ConsoleSmsBackend,
    "locmem": LocmemSmsBackend,
    "filebased": FileBasedSmsBackend,
    "http": HttpSmsBackend,
}


def get_backend() -> BaseSmsBackend:
    name = settings.SMS_BACKEND
    backend_class = SHORT_NAMES.get(name) or import_string(name)
    return backend_class()


def send_sms(to: str, body: str) -> None:
    """Send ``body`` to the E.164 number ``to``; raises SmsDeliveryError on failure."""
    get_backend().send(SmsMessage(to=to, body=body, sender=settings.SMS_SENDER))
