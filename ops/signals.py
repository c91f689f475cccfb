"""Counting the outbox's deliveries without touching ``keys.delivery``.

- a message is queued: ``post_save`` of a new ``OutboundMessage``;
- an attempt's outcome: ``task_finished`` of the ``keys.delivery.deliver`` task, which returns
  ``sent``, ``failed`` (then the row says whether a retry follows or the outbox gave up),
  ``cancelled`` (no longer useful), or nothing counted (``nothing to do``, ``in flight``,
  ``taken over``: another worker's attempt counts). Both the immediate backend (development)
  and ``db_worker`` send the signal.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from django.core.signals import request_finished
from django.db.models.signals import post_save
from django.tasks.base import TaskResultStatus
from django.tasks.signals import task_finished

from ops import metrics
from ops.logging import request_id_var

logger = logging.getLogger(__name__)

DELIVER_TASK = "keys.delivery.deliver"


# The channel of the messages this process saved lately (queued, or claimed for an attempt), so
# that counting an attempt's outcome costs no query when it succeeds.
_channels: OrderedDict[int, str] = OrderedDict()
_CHANNELS_KEPT = 1024


def message_saved(sender, instance, created: bool, **kwargs) -> None:
    if kwargs.get("raw"):
        return
    try:
        _channels[instance.pk] = instance.channel
        _channels.move_to_end(instance.pk)
        while len(_channels) > _CHANNELS_KEPT:
            _channels.popitem(last=False)
    except (KeyError, RuntimeError):  # another thread trimmed at the same time: only a cache
        pass
    if created:
        metrics.count_delivery(instance.channel, "queued")


def delivery_finished(sender, task_result, **kwargs) -> None:
    try:
        _count_attempt(task_result)
    except Exception:  # never let a metric stop the worker
        logger.warning("Could not count a delivery attempt", exc_info=True)


def _count_attempt(task_result) -> None:
    if task_result.task.module_path != DELIVER_TASK:
        return
    if task_result.status != TaskResultStatus.SUCCESSFUL:
        return  # an unexpected error: the task's own log says it; the message stays claimed
    outcome = task_result.return_value
    if outcome not in ("sent", "failed", "cancelled"):
        return
    from keys.models import OutboundMessage

    pk = task_result.args[0]
    channel = _channels.pop(pk, None) if isinstance(pk, int) else None
    if channel is None or outcome == "failed":  # a failure is rare: ask the row what follows
        row = OutboundMessage.objects.filter(pk=pk).values_list("channel", "status").first()
        if row is None:
            return
        channel, status = row
        if outcome == "failed":
            outcome = "dead" if status == OutboundMessage.Status.FAILED else "retried"
    metrics.count_delivery(channel, outcome)


def forget_request_id(sender, **kwargs) -> None:
    """The request is over: log lines from here on belong to no request."""
    request_id_var.set(None)


def connect() -> None:
    from keys.models import OutboundMessage

    post_save.connect(message_saved, sender=OutboundMessage, dispatch_uid="ops.message_saved")
    task_finished.connect(delivery_finished, dispatch_uid="ops.delivery_finished")
    request_finished.connect(forget_request_id, dispatch_uid="ops.forget_request_id")
