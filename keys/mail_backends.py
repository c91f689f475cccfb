"""The e-mail backends named in ``MAILERS`` (``csam_activation/settings.py``).

- ``SMTPBackend`` (``EMAIL_HOST`` set): Django's SMTP backend, with each envelope address worked
  out once per process;
- ``ReadableConsoleBackend`` (no ``EMAIL_HOST``: development, ``make demo``): prints what a
  person reads, not the MIME encoding: the plain-text part of each message as is, so links and
  codes can be copied from the terminal.
"""

from collections import OrderedDict

from django.core.mail.backends import smtp
from django.core.mail.backends.console import EmailBackend
from django.utils.encoding import force_str

#: Envelope addresses already worked out, newest last (``SMTPBackend.prep_address``).
_PREPARED: OrderedDict[tuple[str, bool], str] = OrderedDict()
_PREPARED_MAX = 1024


class SMTPBackend(smtp.EmailBackend):
    """Django's SMTP backend. Its ``prep_address`` parses the sender and each recipient with the
    e-mail package's full header grammar on every message (a third of the CPU of sending one
    here); the sender is always the same and a citizen gets a few messages within minutes, so
    the outcome is kept (the newest 1024, in this process's memory only). An invalid address
    still raises ``ValueError`` every time: only outcomes are kept."""

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
