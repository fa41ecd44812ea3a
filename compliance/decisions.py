"""Withdrawals decided by the trader's AML score.

A trader's score is the one a case is opened by (per rule, the strongest weighted alert;
summed over rules) over the alerts of the last ``AML_SCORE_WINDOW_DAYS`` that no closed case
has settled (a cleared case's alerts no longer count against the trader):

* from ``AML_WITHDRAWAL_BLOCK_SCORE`` a withdrawal is refused (``403 compliance_blocked``),
  nothing held, and the trader's case is opened if none is;
* from ``AML_WITHDRAWAL_REVIEW_SCORE`` it is held as usual but with status ``aml_review``:
  only staff decide it, the trader cannot cancel it;
* a withdrawal already requested whose own evaluation (after its commit) lifts the score past
  the review score is moved to ``aml_review`` while still pending.

The score is one aggregate query over the trader's alerts: the request never waits on the
rules themselves, which run after its commit.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from ledger.services import withdrawal_hold_for_review
from trading.audit import audit_append
from trading.errors import Forbidden

from .models import OPEN_STATUSES, AmlAlert, AmlCase


def trader_score(*, user_id: int, now=None) -> Decimal:
    now = now or timezone.now()
    unsettled = Q(case__isnull=True) | Q(case__status__in=OPEN_STATUSES)
    since = now - timedelta(days=settings.AML_SCORE_WINDOW_DAYS)
    best = (
        AmlAlert.objects.filter(unsettled, user_id=user_id, at__gte=since)
        .values("rule_code")
        .annotate(best=Max("weighted_score"))
        .values_list("best", flat=True)
    )
    return sum(best, Decimal(0))


def _request_score(*, user_id: int, shared: dict | None) -> Decimal:
    """``trader_score``, read once per withdrawal request: the screen and the review checks
    keep it in the request's ``shared`` facts."""
    if shared is None:
        return trader_score(user_id=user_id)
    if "aml_score" not in shared:
        shared["aml_score"] = trader_score(user_id=user_id)
    return shared["aml_score"]


def withdrawal_block(*, user, shared: dict | None = None, **_) -> None:
    """The ``withdrawal_screen`` check: refuse from the block score (and open the case)."""
    score = _request_score(user_id=user.pk, shared=shared)
    if score < settings.AML_WITHDRAWAL_BLOCK_SCORE:
        return
    _case_for_block(user_id=user.pk, score=score)
    raise Forbidden(
        "This withdrawal cannot be made. Our compliance team will review it and contact you.",
        code="compliance_blocked",
    )


def _case_for_block(*, user_id: int, score: Decimal) -> None:
    with transaction.atomic(durable=True):
        if AmlCase.objects.filter(user_id=user_id, status__in=OPEN_STATUSES).exists():
            return
        case = AmlCase.objects.create(user_id=user_id, score=score, opened_at=timezone.now())
        since = timezone.now() - timedelta(days=settings.AML_SCORE_WINDOW_DAYS)
        unassigned = AmlAlert.objects.filter(user_id=user_id, case__isnull=True, at__gte=since)
        alerts = list(unassigned.values_list("pk", flat=True))
        AmlAlert.objects.filter(pk__in=alerts).update(case=case)
        audit_append(
            actor=None,
            action="aml.case_opened",
            target=case,
            data={
                "user_id": user_id,
                "score": score,
                "reason": "a withdrawal refused at the block score",
                "alerts": alerts,
            },
        )


def _review_reason(user_id: int, shared: dict | None = None) -> str | None:
    score = _request_score(user_id=user_id, shared=shared)
    if score >= settings.AML_WITHDRAWAL_REVIEW_SCORE:
        return f"AML score {score.normalize():f} (review from {settings.AML_WITHDRAWAL_REVIEW_SCORE})"
    return None


def withdrawal_review(*, user, shared: dict | None = None, **_) -> str | None:
    """The ``withdrawal_review`` answer: why to hold the withdrawal for review, or None."""
    return _review_reason(user.pk, shared)


def withdrawal_after_evaluation(*, user_id: int, withdrawal_id: int) -> bool:
    """After a withdrawal's own evaluation: hold it for review if the score now says so."""
    reason = _review_reason(user_id)
    if reason is None:
        return False
    return withdrawal_hold_for_review(withdrawal_id=withdrawal_id, reason=reason) is not None
