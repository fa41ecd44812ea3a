"""The review queue: staff decide what a settlement in manual review does next (the admin's
actions call these), each decision with a note and written to the audit trail."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from trading.audit import audit_append
from trading.celery import enqueue_on_commit
from trading.errors import Conflict, NotFound, ValidationFailed

from ..models import Settlement, State
from .state import mirror_refs


def settlement_retry(*, settlement_id: int, actor, note: str = "") -> Settlement:
    """Put a settlement in manual review back to work from its current step."""
    with transaction.atomic(durable=True):
        settlement = _for_update(settlement_id)
        if settlement.state != State.MANUAL_REVIEW:
            raise Conflict(
                f"Settlement {settlement.ref} is {settlement.state}, not in manual review.", code="not_in_review"
            )
        Settlement.objects.filter(id=settlement.id).update(
            state=State.RUNNING,
            attempts=0,
            next_attempt_at=None,
            claimed_until=None,
            claim="",
            updated_at=timezone.now(),
        )
        mirror_refs([settlement.ref], "settling")
        audit_append(
            actor=actor,
            action="settlement.retry",
            target_type="settlement",
            target_id=str(settlement.id),
            data={"ref": settlement.ref, "step": settlement.step, "note": note},
        )
        enqueue_on_commit("settlement.resume", settlement.step, [settlement.id])
    settlement.refresh_from_db()
    return settlement


def settlement_resolve(*, settlement_id: int, actor, note: str) -> Settlement:
    """Close a settlement in manual review by hand (e.g. the swap was done outside)."""
    note = (note or "").strip()
    if not note:
        raise ValidationFailed("A note is required to mark a settlement resolved.", fields={"note": ["Required."]})
    with transaction.atomic(durable=True):
        settlement = _for_update(settlement_id)
        if settlement.state != State.MANUAL_REVIEW:
            raise Conflict(
                f"Settlement {settlement.ref} is {settlement.state}, not in manual review.", code="not_in_review"
            )
        Settlement.objects.filter(id=settlement.id).update(
            state=State.RESOLVED,
            resolved_by=getattr(actor, "email", "") or "",
            resolution_note=note,
            settled_at=timezone.now(),
            updated_at=timezone.now(),
        )
        mirror_refs([settlement.ref], "settled")
        audit_append(
            actor=actor,
            action="settlement.resolve",
            target_type="settlement",
            target_id=str(settlement.id),
            data={"ref": settlement.ref, "step": settlement.step, "note": note},
        )
    settlement.refresh_from_db()
    return settlement


def _for_update(settlement_id: int) -> Settlement:
    try:
        return Settlement.objects.select_for_update().get(pk=settlement_id)
    except Settlement.DoesNotExist:
        raise NotFound("No such settlement.") from None
