"""Audit trail writes. ``audit_append`` is the only way a record is created."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import ipaddress
import uuid

from django.db import transaction
from django.utils import timezone

from .models import GENESIS_HASH, AuditChainHead, AuditRecord

SYSTEM_LABEL = "system"
ANONYMOUS_LABEL = "anonymous"


def audit_append(
    *,
    actor,
    action: str,
    target_type: str = "",
    target_id: str = "",
    data: dict | None = None,
    ip: str | None = None,
    actor_label: str | None = None,
) -> AuditRecord:
    """Append one record to the chain.

    Runs inside the caller's transaction (as a savepoint), so the record commits or rolls back
    with the event it describes; without an outer transaction it is its own. The chain head row
    is locked until that transaction ends, which makes appends one at a time: keep audited
    transactions short after the append. ``actor`` is a user or None (the platform itself);
    ``actor_label`` overrides the label written for it. ``data`` is made JSON-safe: Decimals,
    floats, dates and UUIDs become strings.
    """
    actor_id = getattr(actor, "pk", None) if actor is not None else None
    if actor_label is None:
        if actor is None:
            actor_label = SYSTEM_LABEL
        elif actor_id is None:
            actor_label = ANONYMOUS_LABEL
        else:
            actor_label = getattr(actor, "email", "") or str(actor)
    record = AuditRecord(
        actor_id=actor_id,
        actor_label=_text(actor_label, 254),
        action=_text(action, 64),
        target_type=_text(target_type, 100),
        target_id=_text(target_id, 255),
        data=json_safe(data or {}),
        ip=_ip(ip),
    )
    with transaction.atomic():
        head = _head_for_update()
        # Taken under the lock, so time never goes backwards along the chain.
        record.at = timezone.now()
        record.seq = head.seq + 1
        record.prev_hash = head.hash
        record.hash = record.compute_hash()
        record.save()
        head.seq, head.hash = record.seq, record.hash
        head.save(update_fields=["seq", "hash"])
    return record


def _head_for_update() -> AuditChainHead:
    """Lock the chain head, creating it on first use (or after a test flush removed it).

    The insert ignores a conflict: when two first appends race, the loser's insert waits for
    the winner's commit and does nothing, and its lock then reads the winner's head.
    """
    head = AuditChainHead.objects.select_for_update().filter(pk=AuditChainHead.HEAD_PK).first()
    if head is not None:
        return head
    last = AuditRecord.objects.order_by("-seq").only("seq", "hash").first()
    AuditChainHead.objects.bulk_create(
        [
            AuditChainHead(
                pk=AuditChainHead.HEAD_PK,
                seq=last.seq if last else 0,
                hash=last.hash if last else GENESIS_HASH,
            )
        ],
        ignore_conflicts=True,
    )
    return AuditChainHead.objects.select_for_update().get(pk=AuditChainHead.HEAD_PK)


def json_safe(value):
    """``value`` as plain JSON types that read back from any database exactly as written
    (a float such as 1e100 would not survive PostgreSQL's jsonb unchanged, so it is a string)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {_text(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(item) for item in value), key=repr)
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    return _text(str(value))


def _text(value, max_length: int | None = None) -> str:
    # PostgreSQL text and jsonb refuse NUL characters and unpaired surrogates.
    text = str(value or "").replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:max_length] if max_length else text


def _ip(value) -> str | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(str(value).strip().split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    # The compressed form is what PostgreSQL's inet type gives back, so the hash still matches.
    return str(address)
