"""The task worker of production: django-tasks-db's ``db_worker`` plus the outbox's recovery.

``db_worker`` alone loses a message when it is killed while sending: its task stays "running"
for ever and nothing tries again. This command first takes back what a previous worker left
(messages due, and messages whose claim is older than ``DELIVERY_CLAIM_TIMEOUT``), keeps doing
so every ``--sweep-interval`` seconds, and runs ``db_worker`` with the remaining options. A
message is claimed before it is sent, so taking one back twice never sends it twice.

    TASKS_BACKEND=database python manage.py delivery_worker [--sweep-interval 30]
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connections

from keys import delivery

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Send queued e-mails and SMS (db_worker) and take back the messages a previous worker "
        "left unsent (killed mid-send, or due for a retry)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sweep-interval",
            type=float,
            default=30.0,
            help="Seconds between two looks for messages left behind (default 30).",
        )
        parser.add_argument(
            "--interval", type=float, default=1.0, help="db_worker's polling interval."
        )
        parser.add_argument("--worker-id", default=None, help="db_worker's worker id.")

    def handle(self, *args: Any, **options: Any) -> None:
        self._sweep()
        stop = threading.Event()
        sweeper = threading.Thread(
            target=self._sweep_every,
            args=(options["sweep_interval"], stop),
            name="outbox-sweeper",
            daemon=True,
        )
        sweeper.start()
        worker_options: dict[str, Any] = {"interval": options["interval"]}
        if options["worker_id"]:
            worker_options["worker_id"] = options["worker_id"]
        try:
            call_command("db_worker", **worker_options)
        finally:
            stop.set()

    def _sweep(self) -> None:
        try:
            taken = delivery.retry_due()
        except Exception:  # a database hiccup must not stop the worker
            logger.exception("Looking for messages left behind failed")
            return
        finally:
            close_old_connections()
        if taken:
            logger.info("Took back %d message(s) left behind or due for a retry", taken)

    def _sweep_every(self, interval: float, stop: threading.Event) -> None:
        try:
            while not stop.wait(interval):
                self._sweep()
        finally:
            connections.close_all()
