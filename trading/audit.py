"""The audit trail: ``audit_append`` is the only way a record is created, and
``audit_chain_verify`` re-walks the chain (``manage.py audit_verify``).

Every app records its security and money events here directly, in the transaction of the
event (the kernel imports no app, so any app may). The models are ``trading.models.AuditRecord``
and ``AuditChainHead``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import ipaddress
import uuid
from collections.abc import Callable
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from .models import GENESIS_HASH, AuditChainHead, AuditRecord

SYSTEM_LABEL = "system"
ANONYMOUS_LABEL = "anonymous"


def audit_append(
    *,
    actor,
    action: str,
    target=None,
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
    ``actor_label`` overrides the label written for it. ``target`` is the model instance the
    event is about (its ``app.model`` label and pk), else ``target_type``/``target_id`` say it.
    ``data`` is made JSON-safe: Decimals, floats, dates and UUIDs become strings.
    """
    if target is not None:
        target_type, target_id = target._meta.label_lower, str(target.pk)
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
        actor_label=_safe_text(actor_label, 254),
        action=_safe_text(action, 64),
        target_type=_safe_text(target_type, 100),
        target_id=_safe_text(target_id, 255),
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
        return _safe_text(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {_safe_text(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(item) for item in value), key=repr)
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    return _safe_text(str(value))


def _safe_text(value, max_length: int | None = None) -> str:
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


# --- reads -------------------------------------------------------------------------------------------


class ChainCheck(NamedTuple):
    ok: bool
    checked: int
    first_broken: int | None
    reason: str


def audit_chain_verify(*, progress: Callable[[int], None] | None = None, progress_every: int = 10_000) -> ChainCheck:
    """Re-walk the whole chain in seq order: positions 1..n without gaps, every ``prev_hash``
    equal to the previous record's hash, every hash recomputed from the record's contents.

    Stops at the first broken link. ``progress(checked)`` is called every ``progress_every``
    records. Safe while appends go on: the head is read first, and the walk then sees at least
    the records it counts (they commit together).
    """
    head = AuditChainHead.objects.filter(pk=AuditChainHead.HEAD_PK).values_list("seq", "hash").first()
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    head_hash_seen = None
    records = AuditRecord.objects.order_by("seq").iterator(chunk_size=2000)
    for record in records:
        if record.seq != expected_seq:
            if record.seq > expected_seq:
                missing = (
                    f"seq {expected_seq} is missing"
                    if record.seq == expected_seq + 1
                    else f"seqs {expected_seq}..{record.seq - 1} are missing"
                )
                return ChainCheck(False, checked, expected_seq, f"{missing} (next record is seq {record.seq})")
            return ChainCheck(False, checked, record.seq, f"seq {record.seq} is out of order (expected {expected_seq})")
        if record.prev_hash != prev_hash:
            return ChainCheck(
                False,
                checked,
                record.seq,
                f"prev_hash does not match the hash of seq {record.seq - 1}"
                if record.seq > 1
                else "prev_hash of the first record is not the genesis hash",
            )
        if record.compute_hash() != record.hash:
            return ChainCheck(False, checked, record.seq, "hash mismatch: the record's contents were changed")
        checked += 1
        prev_hash = record.hash
        if head is not None and record.seq == head[0]:
            head_hash_seen = record.hash
        expected_seq += 1
        if progress is not None and checked % progress_every == 0:
            progress(checked)

    if head is not None and head[0] > 0:
        if checked < head[0]:
            return ChainCheck(
                False,
                checked,
                checked + 1,
                f"the chain head is at seq {head[0]} but the records end at seq {checked} "
                "(records removed from the end)",
            )
        if head_hash_seen != head[1]:
            return ChainCheck(False, checked, head[0], f"the chain head's hash does not match seq {head[0]}")
    return ChainCheck(True, checked, None, "")
