"""A console e-mail backend that prints what a person reads, not the MIME encoding.

Used when no ``EMAIL_HOST`` is set (development, ``make demo``): the plain-text part of each
message is printed as is, so links and codes can be copied from the terminal.
"""

from django.core.mail.backends.console import EmailBackend


class ReadableConsoleBackend(EmailBackend):
    def write_message(self, message) -> None:
        rule = "-" * 72
        self.stream.write(
            f"{rule}\nE-mail from {message.from_email} to {', '.join(message.to)}\n"
            f"Subject: {message.subject}\n\n{message.body}\n{rule}\n"
        )
