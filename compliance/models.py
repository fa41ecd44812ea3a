"""The audit trail: an append-only, hash-chained log of security and money events.

Each record's ``hash`` covers its own contents and the previous record's hash, so changing,
removing or reordering any committed record breaks the chain from that point on
(``manage.py audit_verify`` finds it). Records are only ever written by
``compliance.services.audit_append``; this module refuses updates and deletes, and so does the
database (triggers, see migration 0002).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import models

GENESIS_HASH = "0" * 64


class AppendOnlyError(Exception):
    """Something tried to change or delete an audit record."""


class AuditRecordQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit records are append-only: they cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Audit records are append-only: they cannot be deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit records are append-only: they cannot be updated.")

    delete.queryset_only = True


class AuditRecord(models.Model):
    """One event. ``seq`` is the position in the chain: 1, 2, 3, … with no gaps."""

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    # The user who acted, if any; ``actor_label`` keeps their email as it was at that moment
    # (or "system" / "anonymous"), and it is the part the hash covers.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=254)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=255, blank=True, db_index=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        verbose_name = "audit record"

    def __str__(self):
        return f"#{self.seq} {self.action} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit records are append-only: they cannot be updated.")
        kwargs["force_insert"] = True
        kwargs.pop("force_update", None)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit records are append-only: they cannot be deleted.")

    def canonical(self) -> str:
        return canonical_json(
            seq=self.seq,
            at=self.at,
            actor_id=self.actor_id,
            actor_label=self.actor_label,
            action=self.action,
            target_type=self.target_type,
            target_id=self.target_id,
            data=self.data,
            ip=self.ip,
        )

    def compute_hash(self) -> str:
        return chain_hash(self.prev_hash, self.canonical())


class AuditChainHead(models.Model):
    """The single row every append locks: it serializes appends and remembers the chain's
    last link, so records removed from the end of the table are noticed too."""

    HEAD_PK = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=HEAD_PK)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        verbose_name = "audit chain head"

    def __str__(self):
        return f"audit chain head at #{self.seq}"


def canonical_json(*, seq, at, actor_id, actor_label, action, target_type, target_id, data, ip) -> str:
    """The exact text a record's hash covers. Stable across databases: the timestamp in UTC with
    microseconds, keys sorted, no whitespace, non-ASCII escaped."""
    payload = {
        "seq": seq,
        "at": at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "data": data,
        "ip": ip,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chain_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + canonical).encode("ascii")).hexdigest()
