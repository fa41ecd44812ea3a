from django.conf import settings
from django.db import models

from trading.fields import amount_field


class Notification(models.Model):
    """One event told to one user: the in-app message, and the anchor of its email and webhook
    deliveries. ``dedupe_key`` is unique per user, so an event delivered twice is told once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    # Messages written before keys existed were given "legacy:<id>".
    dedupe_key = models.CharField(max_length=200)
    critical = models.BooleanField(default=False)
    # False when the user switched the in-app channel off for this kind: the row still
    # records the event (and its deliveries) but is not listed.
    in_app = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]
        constraints = [models.UniqueConstraint(fields=["user", "dedupe_key"], name="notification_once_per_key")]

    def __str__(self):
        return f"{self.user_id}: {self.title}"


class NotificationPreference(models.Model):
    """A user's choice for one kind on one channel; absent rows mean the kind's default."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=40)
    channel = models.CharField(max_length=10)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind", "channel"], name="notification_preference_once")]

    def __str__(self):
        return f"{self.user_id} {self.kind}/{self.channel}: {'on' if self.enabled else 'off'}"


class WebhookEndpoint(models.Model):
    """Where a user's webhook deliveries go; each body is signed with ``secret`` (HMAC-SHA256)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoint")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.user_id}: {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class Delivery(models.Model):
    """One notification on one outside channel (email or webhook): written with the
    notification, sent by a task after the commit, retried with backoff until sent or given up."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Not before: a coalesced message waits for its window to close; a retry for its backoff.
    due_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["notification", "channel"], name="delivery_once_per_channel")]
        indexes = [models.Index(fields=["status", "due_at"])]

    def __str__(self):
        return f"{self.channel} of {self.notification_id}: {self.status}"


class DeliveryAttempt(models.Model):
    """Every try of a delivery, with its outcome (the delivery log)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    ok = models.BooleanField()
    detail = models.TextField(blank=True)  # the HTTP status or SMTP answer, or the error
    duration_ms = models.PositiveIntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self):
        return f"{self.delivery_id} #{self.number}: {'ok' if self.ok else 'failed'}"


class PriceAlertStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    TRIGGERED = "triggered", "Triggered"  # a ``once`` alert that fired
    DELETED = "deleted", "Deleted"  # kept so a watcher's refresh sees the removal


class PriceAlert(models.Model):
    """A trader's price alert on a spot symbol's last price or an index (``index:BTC``):
    above or below a price, or a move in percent over a window. Evaluated by
    ``notifications.alert_services``; ``last_fired_at`` is the cooldown's anchor."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="price_alerts")
    symbol = models.CharField(max_length=40)
    condition = models.CharField(max_length=12)
    value = amount_field()
    window = models.CharField(max_length=4, blank=True)
    frequency = models.CharField(max_length=16)
    status = models.CharField(max_length=10, choices=PriceAlertStatus.choices, default=PriceAlertStatus.ACTIVE)
    fire_count = models.PositiveIntegerField(default=0)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_fired_price = amount_field(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # what the evaluating process reads to catch up with creations and removals
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "status"]), models.Index(fields=["status", "symbol"])]

    def __str__(self):
        return f"{self.user_id} {self.symbol} {self.condition} {self.value}"

    @property
    def window_or_none(self) -> str | None:
        return self.window or None
