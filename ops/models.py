"""The monitor's state: each check's current status, the incidents (a check failing, from
when to when), declared maintenance windows, the heartbeats periodic tasks leave; and the
analytics' daily aggregates per spot symbol."""

from django.conf import settings
from django.db import models

from trading.fields import amount_field

from .rules import FAILING, OK


class CheckStatusChoice(models.TextChoices):
    OK = OK, "ok"
    FAILING = FAILING, "failing"


class CheckState(models.Model):
    name = models.CharField(max_length=80, unique=True, help_text="database, redis, engine:BTC-USDT, web:<url>...")
    status = models.CharField(max_length=8, choices=CheckStatusChoice.choices, default=OK, db_index=True)
    since = models.DateTimeField(help_text="When the check entered this status.")
    failures = models.PositiveIntegerField(default=0, help_text="Consecutive failed probes.")
    successes = models.PositiveIntegerField(default=0, help_text="Consecutive good probes.")
    detail = models.JSONField(default=dict, blank=True, help_text="What the last probe found.")
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ("name",)
        verbose_name = "check"

    def __str__(self):
        return f"{self.name}: {self.status}"


class Incident(models.Model):
    check_name = models.CharField("check", max_length=80, db_index=True)
    started_at = models.DateTimeField(db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True, help_text="What the probe found when it turned failing.")
    silenced = models.BooleanField(default=False, help_text="Began during a maintenance window: no alert was sent.")
    alerted_at = models.DateTimeField(null=True, blank=True, help_text="When the alert went out.")
    recovery_sent_at = models.DateTimeField(null=True, blank=True, help_text="When the recovery message went out.")

    class Meta:
        ordering = ("-started_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["check_name"],
                condition=models.Q(resolved_at__isnull=True),
                name="ops_one_open_incident_per_check",
            )
        ]

    def __str__(self):
        return f"{self.check_name} since {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class MaintenanceWindow(models.Model):
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-starts_at",)

    def __str__(self):
        return f"{self.starts_at:%Y-%m-%d %H:%M} – {self.ends_at:%H:%M}: {self.reason}"


class Heartbeat(models.Model):
    name = models.CharField(max_length=80, unique=True)
    at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} at {self.at}"


class DailyAggregate(models.Model):
    """One spot symbol's day (UTC), recomputed from the trades and orders tables by
    ``ops.services.daily_aggregate_compute`` (beat, ``manage.py aggregate_daily``): rewriting a
    day gives the same row. Fees are in the asset each side received: buyers pay theirs in the
    base asset, sellers in the quote asset."""

    symbol = models.CharField(max_length=20)
    day = models.DateField()
    trades = models.PositiveIntegerField(default=0)
    volume_base = amount_field(default=0)
    volume_quote = amount_field(default=0)
    open = amount_field(null=True, blank=True, help_text="the day's first trade price; empty without trades")
    high = amount_field(null=True, blank=True)
    low = amount_field(null=True, blank=True)
    close = amount_field(null=True, blank=True, help_text="the day's last trade price")
    orders_placed = models.PositiveIntegerField(default=0, help_text="orders entered by traders (not routing children)")
    orders_cancelled = models.PositiveIntegerField(default=0, help_text="orders that ended cancelled that day")
    fees_base = amount_field(default=0, help_text="fees buyers paid, in the base asset")
    fees_quote = amount_field(default=0, help_text="fees sellers paid, in the quote asset")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ("-day", "symbol")
        verbose_name = "daily aggregate"
        constraints = [models.UniqueConstraint(fields=["symbol", "day"], name="ops_daily_aggregate_symbol_day")]
        indexes = [models.Index(fields=["day"], name="ops_daily_aggregate_day")]

    def __str__(self):
        return f"{self.symbol} {self.day:%Y-%m-%d}"
