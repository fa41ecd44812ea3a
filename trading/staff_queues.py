"""What waits for staff: each app names its queue (identity checks to review, withdrawals to
approve, settlements in manual review...) and how to count it; the staff console's index
shows them all with a link to the list. Apps register from their ``admin`` module, so the
console (in ``accounts``, the lowest app) never imports a higher one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class Queue:
    label: str
    changelist: str  # the admin URL name of the list
    query: str  # the filter that shows what waits, e.g. "status__exact=pending"
    count: Callable[[], int]


_queues: dict[str, Queue] = {}


def register(key: str, *, label: str, changelist: str, query: str, count: Callable[[], int]) -> None:
    _queues[key] = Queue(label=label, changelist=changelist, query=query, count=count)


def waiting() -> list[dict]:
    """Every registered queue with its count now and the link to it, in registration order."""
    shown = []
    for queue in _queues.values():
        try:
            url = reverse(queue.changelist)
        except NoReverseMatch:  # the model is not in this console
            continue
        shown.append({"label": queue.label, "count": queue.count(), "url": f"{url}?{queue.query}"})
    return shown


def count_of(key: str) -> int | None:
    """One registered queue's count now (a higher app reads a queue of its floor this way,
    without importing it); None when no app registered ``key``."""
    queue = _queues.get(key)
    return None if queue is None else queue.count()
