"""Audit trail reads."""

from __future__ import annotations

from typing import Callable, NamedTuple

from .models import GENESIS_HASH, AuditChainHead, AuditRecord


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
                    f"seq {expected_seq} is missing" if record.seq == expected_seq + 1
                    else f"seqs {expected_seq}..{record.seq - 1} are missing"
                )
                return ChainCheck(False, checked, expected_seq, f"{missing} (next record is seq {record.seq})")
            return ChainCheck(False, checked, record.seq, f"seq {record.seq} is out of order (expected {expected_seq})")
        if record.prev_hash != prev_hash:
            return ChainCheck(
                False, checked, record.seq,
                f"prev_hash does not match the hash of seq {record.seq - 1}" if record.seq > 1
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
                False, checked, checked + 1,
                f"the chain head is at seq {head[0]} but the records end at seq {checked} (records removed from the end)",
            )
        if head_hash_seen != head[1]:
            return ChainCheck(False, checked, head[0], f"the chain head's hash does not match seq {head[0]}")
    return ChainCheck(True, checked, None, "")
