"""Kernel models: the leases that keep every singleton active-standby, the durable state a
singleton keeps between leaders (written only through a fenced write), the outbox, and the
audit trail.

The audit trail is an append-only, hash-chained log of security and money events. Each
record's ``hash`` covers its own contents and the previous record's hash, so changing,
removing or reordering any committed record breaks the chain from that point on
(``manage.py audit_verify`` finds it). Records are only ever written by
``trading.audit.audit_append``; the models refuse updates and deletes, and so does the
database (triggers, see compliance/migrations/0002).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC

from django.conf import settings
from django.db import models


class Lease(models.Model):
    """One row per singleton role. ``epoch`` grows by one each time a new holder (or the
    same holder after its lease lapsed) takes the role; writes fence on it."""

    name = models.CharField(max_length=200, primary_key=True)
    holder = models.CharField(max_length=200, blank=True, default="")
    epoch = models.BigIntegerField(default=0)
    # Always set from the database clock, so contenders on different machines agree.
    expires_at = models.DateTimeField()
    acquired_at = models.DateTimeField(null=True, blank=True)
    renewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} (epoch {self.epoch}, {self.holder or 'nobody'})"


class SingletonCheckpoint(models.Model):
    """A singleton's durable state (the relay's cursor, the feed's state), stamped with
    the epoch of the leader that wrote it."""

    name = models.CharField(max_length=200, primary_key=True)
    epoch = models.BigIntegerField()
    value = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} @ epoch {self.epoch}"


class OutboxEvent(models.Model):
    """An event that must reach the back office, written in the business transaction that
    caused it. ``txid`` is the writing transaction's id (PostgreSQL ``xid8``; 0 on SQLite,
    where writers are serialized and id order is commit order): the relay reads in
    ``(txid, id)`` order below the oldest transaction still running, so an event whose
    transaction commits late is never skipped."""

    txid = models.BigIntegerField(default=0)
    topic = models.CharField(max_length=60)
    key = models.CharField(max_length=120)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["txid", "id"], name="outbox_txid_id"),
            models.Index(fields=["topic", "created_at"], name="outbox_topic_created"),
        ]

    def __str__(self) -> str:
        return f"{self.topic}:{self.key}"


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
        # The table keeps the name it was created with (compliance owned it before the kernel).
        db_table = "compliance_auditrecord"
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
        db_table = "compliance_auditchainhead"
        verbose_name = "audit chain head"

    def __str__(self):
        return f"audit chain head at #{self.seq}"


def canonical_json(*, seq, at, actor_id, actor_label, action, target_type, target_id, data, ip) -> str:
    """The exact text a record's hash covers. Stable across databases: the timestamp in UTC with
    microseconds, keys sorted, no whitespace, non-ASCII escaped."""
    payload = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
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
