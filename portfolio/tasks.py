"""The portfolio app's Celery tasks: thin, they call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from .snapshots import snapshots_catch_up

logger = logging.getLogger(__name__)


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


def snapshots_at_start() -> None:
    """The embedded mode's worker: one catch-up as the process starts, then done."""
    run = snapshots_catch_up()
    if run.days:
        logger.info("portfolio snapshots: %s written for %s days since %s", run.written, len(run.days), run.days[0])


@shared_task(name="portfolio.tasks.digests", time_limit=3600, soft_time_limit=3540, acks_late=True)
def digests(period: str = "daily") -> dict:
    """Beat, 00:10 UTC (after the snapshots) for the day, and Mondays for the week: every
    trader's portfolio summary. Idempotent: a trader told already is not told again."""
    from .digests import digests_send

    run = digests_send(kind=period)
    return {"period": run.period.label, "traders": run.traders, "told": run.told, "seconds": round(run.seconds, 3)}
