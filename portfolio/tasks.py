"""The portfolio app's Celery tasks: thin, they call a service."""

from __future__ import annotations

from celery import shared_task

from .snapshots import snapshots_catch_up


@shared_task(name="portfolio.tasks.daily_snapshots", time_limit=3600, soft_time_limit=3540, acks_late=True)
def daily_snapshots() -> dict:
    """Beat, 00:00 UTC: every trader's snapshot of the day that just ended, and of any closed
    day a stopped beat missed (on the first run, every day since the ledger began).
    Idempotent: a second run, or two at once, write nothing more."""
    run = snapshots_catch_up()
    return {
        "days": [day.isoformat() for day in run.days],
        "written": run.written,
        "skipped": {day.isoformat(): assets for day, assets in run.skipped.items()},
        "seconds": round(run.seconds, 3),
    }
