"""The periodic tasks: in embedded mode, the same CELERY_BEAT_SCHEDULE that celery beat
runs in stack mode, run by a thread of the web process (tasks execute in-process); in
stack mode, celery beat's scheduler."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

from celery.beat import PersistentScheduler
from celery.schedules import schedule as every
from django.conf import settings
from django.db import close_old_connections
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


class Scheduler(PersistentScheduler):
    """celery beat's scheduler in stack mode (``CELERY_BEAT_SCHEDULER``): the file-backed
    one, except that the tasks named in ``BEAT_IN_PROCESS_TASKS`` run in beat's own process
    instead of being sent to a worker.

    The ops heartbeat is such a task: it stamps that beat is alive and its schedule fires.
    Run by a worker, it also measured whether a worker was free, so a busy, starved or hung
    worker made beat look late (two alerts for one fault, and a false one while a rolling
    restart starts a dozen processes on a small box). Workers have their own check (celery's
    ping); beat's now answers for beat alone."""

    def setup_schedule(self):
        # the schedule file's folder (var/ in the Procfile) may not exist yet in a fresh checkout
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        if entry.task not in settings.BEAT_IN_PROCESS_TASKS:
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        entry = self.reserve(entry) if advance else entry
        close_old_connections()  # as a worker does around each task: drop a broken one
        try:
            # eager: in this process, its outcome (an exception too) kept in the result
            return self.app.tasks[entry.task].apply(args=entry.args, kwargs=entry.kwargs)
        finally:
            close_old_connections()
