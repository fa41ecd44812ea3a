"""The Celery app. Embedded mode runs tasks eagerly in-process; stack mode uses Redis."""

import logging
import os

from celery import Celery
from celery.signals import task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")

app = Celery("trading")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


_worker_process = False


@worker_process_init.connect
def _mark_worker_process(**kwargs):
    global _worker_process
    _worker_process = True


@task_prerun.connect
def _refuse_a_broken_connection(**kwargs):
    """A task must start outside any transaction. If an interrupted task left this worker
    process's connection inside one, the process is unusable: let the pool replace it (the
    message is re-queued, since tasks acknowledge late and reject when their worker is lost).
    Only in a worker's pool process: tasks run in-line elsewhere (tests, embedded mode)."""
    from django.db import connection

    if _worker_process and connection.in_atomic_block:
        logging.getLogger(__name__).error("worker connection left inside a transaction; replacing this worker process")
        os._exit(70)


def enqueue_on_commit(
    task_name: str, *args, countdown: float | None = None, queue: str | None = None, **kwargs
) -> None:
    """Queue the task named ``task_name`` once the current transaction commits (at once
    outside one). By name, so a service can hand work to its own app's task without
    importing the tasks module that imports it back; eagerly in the embedded mode.
    ``countdown`` (seconds to wait) and ``queue`` are Celery's options, not the task's."""
    from django.db import transaction

    options = {name: value for name, value in (("countdown", countdown), ("queue", queue)) if value is not None}
    transaction.on_commit(lambda: app.tasks[task_name].apply_async(args=args, kwargs=kwargs, **options))
