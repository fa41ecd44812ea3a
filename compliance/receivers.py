"""Real-time AML: deposits credited, withdrawals requested and sign-ins queue an evaluation of
the trader when their transaction commits (large trades are picked up by a periodic task,
``tasks.aml_large_trades``, so the engine runner never waits for a rule)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


def _queue(user_id: int, trigger: str) -> None:
    from .tasks import aml_evaluate

    def send():
        try:
            aml_evaluate.delay(user_id, trigger)
        except Exception:
            # the broker is down: the nightly scan evaluates this trigger instead
            logger.exception("AML evaluation of %s for user %s not queued", trigger, user_id)

    transaction.on_commit(send)


def on_deposit_credited(sender, user=None, transfer=None, **kwargs):
    if user is not None and transfer is not None:
        _queue(user.pk, f"transfer:{transfer.pk}")


def on_withdrawal_requested(sender, withdrawal=None, **kwargs):
    if withdrawal is not None:
        _queue(withdrawal.user_id, f"withdrawal:{withdrawal.pk}")


def on_logged_in(sender, request=None, user=None, **kwargs):
    if user is None or getattr(user, "pk", None) is None:
        return
    from accounts.devices import request_ip

    from .services import signin_record

    meta = getattr(request, "META", None) or {}
    signin = signin_record(
        user=user,
        ip=request_ip(request),
        user_agent=str(meta.get("HTTP_USER_AGENT", ""))[:1000],
        country=str(meta.get(settings.AML_COUNTRY_HEADER, "")) if settings.AML_COUNTRY_HEADER else "",
    )
    _queue(user.pk, f"signin:{signin.pk}")
