"""Shared helpers for the audit trail tests."""

from __future__ import annotations

from trading.models import AuditRecord


def records(action: str | None = None) -> list[AuditRecord]:
    qs = AuditRecord.objects.order_by("seq")
    if action is not None:
        qs = qs.filter(action=action)
    return list(qs)


def only(action: str) -> AuditRecord:
    found = records(action)
    assert len(found) == 1, [(r.seq, r.action, r.data) for r in records()]
    return found[0]
