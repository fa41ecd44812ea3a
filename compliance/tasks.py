"""AML Celery tasks: thin, they call a service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from orders.spot.models import SpotTrade

from . import selectors, services

logger = logging.getLogger(__name__)


@shared_task(
    name="compliance.aml_evaluate",
    time_limit=60,
    soft_time_limit=55,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    acks_late=True,
)
def aml_evaluate(user_id: int, trigger: str) -> dict:
    outcome = services.aml_evaluate(user_id=user_id, trigger=trigger)
    kind, _, key = trigger.partition(":")
    if kind == "withdrawal" and key.isdigit() and outcome.alerts:
        # its own alerts may lift the trader past the review score while it is still pending
        from .decisions import withdrawal_after_evaluation

        withdrawal_after_evaluation(user_id=user_id, withdrawal_id=int(key))
    return {
        "alerts": [a.pk for a in outcome.alerts],
        "cases_opened": [c.pk for c in outcome.cases_opened],
        "seconds": round(outcome.seconds, 4),
    }


@shared_task(name="compliance.aml_scan_nightly", time_limit=3600, soft_time_limit=3540, acks_late=True)
def aml_scan_nightly() -> dict:
    """Beat, nightly: the day's activity (and a day's overlap, so a missed night is covered)
    through every live rule; what the real-time path raised already is not raised again."""
    outcome = services.aml_scan(since=timezone.now() - timedelta(days=2))
    logger.info("aml scan: %s alerts, %s cases opened", len(outcome.alerts), len(outcome.cases_opened))
    return {"users": outcome.users, "alerts": len(outcome.alerts), "cases_opened": len(outcome.cases_opened)}


@shared_task(name="compliance.aml_large_trades", time_limit=120, soft_time_limit=110, expires=60)
def aml_large_trades() -> int:
    """Beat, every minute: each side of the spot trades at or above AML_LARGE_TRADE_USDT of the
    last few minutes is evaluated. The engine runner's batch is never held up by the rules;
    an overlap between runs costs nothing (an alert is raised once)."""
    since = timezone.now() - timedelta(minutes=5)
    trades = SpotTrade.objects.filter(created_at__gte=since, quote_amount__gte=settings.AML_LARGE_TRADE_USDT)
    system = selectors.system_users()
    done = 0
    for pk, maker, taker in trades.values_list("pk", "maker_user_id", "taker_user_id"):
        for user_id in {maker, taker} - system:
            services.aml_evaluate(user_id=user_id, trigger=f"trade:{pk}")
            done += 1
    return done
