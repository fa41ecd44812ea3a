"""Kernel models: the leases that keep every singleton active-standby, and the durable
state a singleton keeps between leaders (written only through a fenced write)."""

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
