"""The benchmark's mail server: aiosmtpd in a process of its own, one JSON line per message.

``python benchmarks/smtp_sink.py PORT FILE`` accepts every message on 127.0.0.1:PORT and appends
``{"to": [...], "first_line": "..."}`` (the first line of the text part, where the product and the
floor put a code) to FILE. ``benchmarks/bench.py`` reads the file; in a process of its own the
server answers at once however busy the simulated citizens' threads are (as a real mail relay
would), so a slow harness does not hold up the application's SMTP calls.
"""

import email
import email.policy
import json
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out) -> None:
        self.out = out
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content().strip() if body is not None else ""
        line = json.dumps(
            {"to": [r.lower() for r in envelope.rcpt_tos], "first_line": text.splitlines()[0]}
            if text
            else {"to": [r.lower() for r in envelope.rcpt_tos], "first_line": ""}
        )
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()
        return "250 Message accepted for delivery"


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "a", encoding="utf-8") as out:
        controller = Controller(Handler(out), hostname="127.0.0.1", port=port)
        controller.start()
        print("ready", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
        controller.stop()


if __name__ == "__main__":
    main()
