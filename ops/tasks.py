"""The beat's heartbeat: beat runs it every 2 seconds in its own process
(``BEAT_IN_PROCESS_TASKS``), so the monitor's ``beat`` check sees that beat's schedule is
firing, whether or not a worker is free. The analytics' daily aggregates,
recomputed by beat every few minutes."""

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="ops.heartbeat", ignore_result=True, time_limit=10, soft_time_limit=5)
def heartbeat() -> None:
    services.heartbeat_stamp(name="beat")


@shared_task(name="ops.aggregate_daily", ignore_result=True, time_limit=300, soft_time_limit=240)
def aggregate_daily(day: str | None = None) -> None:
    """Beat runs it without a day: today so far and yesterday (late trades and cancels of the
    night land in the right day); ``day`` (YYYY-MM-DD) recomputes that day alone."""
    if day is not None:
        services.daily_aggregate_compute(day=date.fromisoformat(day))
        return
    today = timezone.now().date()
    services.daily_aggregates_compute(first=today - timedelta(days=1), last=today)
