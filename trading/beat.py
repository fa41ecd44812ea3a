"""The periodic tasks of the embedded mode: the same CELERY_BEAT_SCHEDULE that celery beat
runs in stack mode, run by a thread of the web process (tasks execute in-process)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from celery.schedules import schedule as every
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


def run_embedded_beat(stop: threading.Event | None = None, tick: float = 0.5) -> None:
    from trading.celery import app

    stop = stop or threading.Event()
    entries = {}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        sched = entry["schedule"]
        if isinstance(sched, (int, float, timedelta)):
            sched = every(sched if isinstance(sched, timedelta) else timedelta(seconds=sched))
        entries[name] = [entry["task"], sched, timezone.now(), tuple(entry.get("args", ())), entry.get("kwargs", {})]
    while not stop.wait(tick):
        for name, entry in entries.items():
            task, sched, last, args, kwargs = entry
            due, _ = sched.is_due(last)
            if not due:
                continue
            entry[2] = timezone.now()
            try:
                app.tasks[task].apply_async(args=args, kwargs=kwargs)
            except Exception:
                logger.exception("periodic task %s (%s) failed", name, task)
