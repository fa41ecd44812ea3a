"""Portfolio tables: what the trader's history and the ledger cannot answer fast enough by
themselves."""

from django.conf import settings
from django.db import models

from trading.fields import amount_field


class DailySnapshot(models.Model):
    """A trader's portfolio at the end of one UTC day (00:00 UTC of the next): its value in
    USDT at that moment's prices and the net deposits minus withdrawals of the day (valued
    in USDT when they happened). Written once per trader and day; the equity curve and the
    returns are read from these rows."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    # Exact in both databases (trading.fields): the embedded mode's SQLite keeps integer units.
    value_usdt = amount_field()
    net_flows_usdt = amount_field()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "date"], name="portfolio_snapshot_once_per_day")]
        indexes = [models.Index(fields=["date"], name="portfolio_snapshot_date")]

    def __str__(self):
        return f"{self.user_id} {self.date} {self.value_usdt}"


class RebalanceStatus(models.TextChoices):
    PLACING = "placing", "Placing"  # its orders are going out
    PLACED = "placed", "Placed"  # every planned order was entered
    PARTIAL = "partial", "Partly placed"  # an order was refused, or its sells took too long
    NOTHING_TO_DO = "nothing_to_do", "Nothing to do"  # within the tolerance, or no order could help


class RebalanceBatch(models.Model):
    """One rebalance a trader asked for: the plan as it was computed (``orders``: each planned
    order with what became of it, in the order they trade) and the orders it entered, which
    carry client order ids derived from this row. ``client_id`` is the trader's: a replay
    returns this row and enters nothing."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    client_id = models.CharField(max_length=64)
    request_hash = models.CharField(max_length=64)
    targets = models.JSONField(help_text="{asset: weight} as decimal strings")
    tolerance = amount_field()
    status = models.CharField(max_length=16, choices=RebalanceStatus.choices, default=RebalanceStatus.PLACING)
    value_usdt = amount_field(help_text="the spot assets' value when it was planned")
    drift_before = amount_field()
    drift_after = amount_field(help_text="expected, at the estimated prices")
    orders = models.JSONField(default=list)
    error = models.JSONField(null=True, blank=True, help_text="why a planned order was not entered")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["user", "client_id"], name="portfolio_rebalance_client_id")]
        indexes = [models.Index(fields=["user", "-id"], name="portfolio_rebalance_recent")]

    def __str__(self):
        return f"Rebalance {self.pk} of {self.user_id}: {self.status}"


class RebalanceTargets(models.Model):
    """The weights a trader keeps their portfolio at (the last ones they rebalanced to, or
    saved): the Portfolio page's drift suggestion measures against them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    targets = models.JSONField(help_text="{asset: weight} as decimal strings")
    tolerance = amount_field()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Targets of {self.user_id}"
