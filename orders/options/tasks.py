"""Celery tasks of the options counter: thin, they call a service."""

from __future__ import annotations

from celery import shared_task
from django.utils.dateparse import parse_datetime

from trading.money import fmt

from .services import SettlementPriceUnavailable
from .services import option_quotes_purge as quotes_purge_service
from .services import options_expire as expire_service


@shared_task(
    bind=True, name="orders.tasks.options_expire", time_limit=600, soft_time_limit=540, max_retries=60, acks_late=True
)
def options_expire(self, expiry: str | None = None) -> dict:
    """Settle expired option series (beat: 08:00 UTC). Idempotent; retried every minute (for
    an hour) while an expiry has no settlement TWAP yet, and any expiry still unsettled is
    picked up by the next day's run."""
    when = parse_datetime(expiry) if expiry else None
    if expiry and when is None:
        raise ValueError(f"expiry must be an ISO 8601 time, not {expiry!r}")
    try:
        summary = expire_service(expiry=when)
    except SettlementPriceUnavailable as exc:
        if self.request.is_eager:
            raise  # embedded mode: an eager retry would re-run at once; the next run settles it
        raise self.retry(exc=exc, countdown=60) from exc
    return {**summary, "payout_usdt": fmt("USDT", summary["payout_usdt"])}


@shared_task(name="orders.tasks.option_quotes_purge", time_limit=300, soft_time_limit=240, acks_late=True)
def option_quotes_purge() -> int:
    """Hourly: forget quotes that expired unused a day ago."""
    return quotes_purge_service()
