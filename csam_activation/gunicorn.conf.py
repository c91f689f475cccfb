"""gunicorn settings: ``gunicorn -c csam_activation/gunicorn.conf.py csam_activation.wsgi``.

The access log (on standard output unless ``--access-logfile`` says otherwise) and the error log
never carry an activation link's token: the request line ``%(r)s``, the path ``%(U)s``, the
referer and every other atom are redacted to ``/activeren/[redacted]/`` (``keys/logging.py``),
also with a ``--log-config-dict`` of your own (the filter sits on gunicorn's loggers, not on a
handler). Command-line options (``--bind``, ``--workers``, …) and ``GUNICORN_CMD_ARGS`` still
apply on top of this file.
"""

import os
import sys
from pathlib import Path

from gunicorn.glogging import Logger

PROJECT = str(Path(__file__).resolve().parent.parent)
if PROJECT not in sys.path:  # the project's modules, whatever the directory gunicorn starts in
    sys.path.insert(0, PROJECT)

from keys.logging import RedactLinkTokens  # noqa: E402


class RedactingLogger(Logger):
    """gunicorn's logger with the link-token filter on its access and error loggers."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(existing, RedactLinkTokens) for existing in log.filters):
                log.addFilter(RedactLinkTokens())
        if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
            # One JSON object a line, with the request id the app answered with, addresses
            # masked; safe to call again when gunicorn reopens its logs.
            from ops.logging import use_json_for_gunicorn

            use_json_for_gunicorn(self)


logger_class = RedactingLogger
accesslog = "-"


def post_worker_init(worker: object) -> None:
    """Once the worker has loaded the application: everything made so far (modules, settings,
    URL patterns, the kinds of key) lives as long as the worker, so the garbage collector is
    told to leave it out of its full collections (``gc.freeze``). Those collections otherwise
    walk all of it, again and again, while a request allocates: about 5% of a worker's CPU in
    ``make bench``. Objects made by requests are collected as before."""
    import gc

    gc.collect()
    gc.freeze()
