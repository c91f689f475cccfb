"""Benchmark only: the product's SMTP backend without a server (``benchmarks/profile_flow.py``).

``keys.mail_backends.SMTPBackend`` formats each message (``keys.mail.wire_bytes``) and works out
its envelope addresses as in production; the connection it hands the bytes to keeps them in
:data:`SENT` instead of talking SMTP, so an in-process profile counts the same Python work per
e-mail as a gunicorn worker does (Django's in-memory mailer would run the e-mail package's
formatting instead, several times the CPU).
"""

from __future__ import annotations

from keys.mail_backends import SMTPBackend

#: ``(recipients, message bytes)`` of every message "sent", oldest first.
SENT: list[tuple[list[str], bytes]] = []


class _KeepingConnection:
    """The one call of ``smtplib.SMTP`` the backend makes while sending, keeping the message
    (``WireBackend`` opens and closes without it)."""

    def sendmail(self, from_addr: str, to_addrs: list[str], msg: bytes) -> dict:
        SENT.append((list(to_addrs), msg))
        return {}


class WireBackend(SMTPBackend):
    def open(self) -> bool | None:
        if self.connection:
            return False
        self.connection, self._reused, self._broken = _KeepingConnection(), False, False
        return True

    def close(self) -> None:
        self.connection = None
