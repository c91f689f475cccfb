import os

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from ops import signals

        signals.connect()
        # prometheus-client's multiprocess mode writes one file per process there; the stack
        # empties the directory before any process starts (never a worker: it would erase the
        # counts of the others), so a missing one is only created.
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            os.makedirs(directory, exist_ok=True)
