"""The e-mail backends named in ``MAILERS`` (``csam_activation/settings.py``).

- ``SMTPBackend`` (``EMAIL_HOST`` set): Django's SMTP backend, its connection kept for the next
  message, each envelope address worked out once per process and the service's own e-mails
  formatted directly (``keys.mail.wire_bytes``);
- ``ReadableConsoleBackend`` (no ``EMAIL_HOST``: development, ``make demo``): prints what a
  person reads, not the MIME encoding: the plain-text part of each message as is, so links and
  codes can be copied from the terminal.
"""

import contextlib
import smtplib
import threading
import time
from collections import OrderedDict

from django.core.mail import EmailMessage
from django.core.mail.backends import smtp
from django.core.mail.backends.console import EmailBackend
from django.utils.encoding import force_str

from keys.mail import wire_bytes

#: Envelope addresses already worked out, newest last (``SMTPBackend.prep_address``).
_PREPARED: OrderedDict[tuple[str, bool], str] = OrderedDict()
_PREPARED_MAX = 1024


#: How long an SMTP connection may have been idle and still be used again (``SMTPBackend``):
#: well under the five minutes RFC 5321 (4.5.3.2.7) gives a server before it may close one.
KEEP_IDLE_SECONDS = 30.0


class _Kept(threading.local):
    """This thread's one kept SMTP connection: ``(settings key, connection, last used)``."""

    entry: tuple[tuple, smtplib.SMTP, float] | None = None


_KEPT = _Kept()


class SMTPBackend(smtp.EmailBackend):
    """Django's SMTP backend, with three savings for a service that sends a message at a time.

    - The connection is kept for the next message (one per thread, idle at most
      :data:`KEEP_IDLE_SECONDS`): Django's backend connects, greets (``EHLO``) and quits for
      every message, a fifth of the CPU of sending one here. A kept connection the server has
      closed meanwhile fails at its first command (or answers ``421``: closing, as a relay
      that takes a few messages per connection does); the message then goes once more over a
      new connection. A connection that saw any other error is closed, never kept.
    - ``prep_address`` parses the sender and each recipient with the e-mail package's full
      header grammar on every message (a third of the CPU of sending one); the sender is always
      the same and a citizen gets a few messages within minutes, so the outcome is kept (the
      newest 1024, in this process's memory only). An invalid address still raises
      ``ValueError`` every time: only outcomes are kept.
    - The service's e-mails (a text part and an HTML alternative, plain addresses) go out as
      ``keys.mail.wire_bytes`` formats them, in a seventh of the CPU of the e-mail package's
      formatting; any other message is formatted by Django as before.
    """

    _reused = False
    _broken = False

    def _settings_key(self) -> tuple:
        return (
            self.host,
            self.port,
            self.username,
            self.password,
            self.use_tls,
            self.use_ssl,
            self.ssl_certfile,
            self.ssl_keyfile,
            self.timeout,
        )

    def open(self) -> bool | None:
        if self.connection:
            return False
        kept, _KEPT.entry = _KEPT.entry, None
        if kept is not None:
            key, connection, last_used = kept
            if key == self._settings_key() and time.monotonic() - last_used < KEEP_IDLE_SECONDS:
                self.connection, self._reused, self._broken = connection, True, False
                return True  # the caller closes it when done: close() keeps it again
            self._close_quietly(connection)
        self._reused, self._broken = False, False
        return super().open()

    def close(self) -> None:
        connection = self.connection
        if connection is not None and not self._broken and getattr(connection, "sock", None):
            self.connection = None
            kept = (self._settings_key(), connection, time.monotonic())
            previous, _KEPT.entry = _KEPT.entry, kept
            if previous is not None:
                self._close_quietly(previous[1])
            return
        super().close()

    def _send_formatted(self, email_message: EmailMessage) -> bool:
        """Django's ``_send`` with the bytes of ``wire_bytes`` where it formats the message."""
        raw = wire_bytes(email_message)
        if raw is None:
            return super()._send(email_message)
        if not email_message.recipients():
            return False
        from_email = self.prep_address(email_message.from_email)
        recipients = [self.prep_address(address) for address in email_message.recipients()]
        try:
            self.connection.sendmail(from_email, recipients, raw)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True

    def _send(self, email_message: EmailMessage) -> bool:
        try:
            sent = self._send_formatted(email_message)
            if not sent and email_message.recipients():
                self._broken = True  # an error passed silently (fail_silently): not kept
            return sent
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            self._broken = True
            if not self._reused:
                raise
        except smtplib.SMTPResponseException as error:
            # 421: the server is closing this connection (too many messages on it, shutting
            # down), said before it accepted anything.
            self._broken = True
            if not self._reused or error.smtp_code != 421:
                raise
        except BaseException:
            self._broken = True
            raise
        # The kept connection was closed by the server while idle: nothing was accepted on it
        # (it failed at its first command), so the message goes once over a new connection.
        self._close_quietly(self.connection)
        self.connection, self._reused, self._broken = None, False, False
        if not super().open():
            return False  # failed silently (fail_silently), as Django's open() does
        try:
            sent = self._send_formatted(email_message)
        except BaseException:
            self._broken = True  # this one is not kept either
            raise
        self._broken = not sent
        return sent

    @staticmethod
    def _close_quietly(connection: smtplib.SMTP | None) -> None:
        if connection is None:
            return
        with contextlib.suppress(OSError):
            connection.close()  # no QUIT: a kept connection may already be gone

    def prep_address(self, address: str, force_ascii: bool = True) -> str:
        key = (force_str(address), force_ascii)
        prepared = _PREPARED.get(key)
        if prepared is not None:
            _PREPARED.move_to_end(key)
            return prepared
        prepared = super().prep_address(address, force_ascii=force_ascii)
        _PREPARED[key] = prepared
        if len(_PREPARED) > _PREPARED_MAX:
            _PREPARED.popitem(last=False)
        return prepared


class ReadableConsoleBackend(EmailBackend):
    def write_message(self, message) -> None:
        rule = "-" * 72
        self.stream.write(
            f"{rule}\nE-mail from {message.from_email} to {', '.join(message.to)}\n"
            f"Subject: {message.subject}\n\n{message.body}\n{rule}\n"
        )
