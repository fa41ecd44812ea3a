"""Portfolio tables: what the trader's history and the ledger cannot answer fast enough by
themselves."""

from django.conf import settings
from django.db import models


class DailySnapshot(models.Model):
    """A trader's portfolio at the end of one UTC day (00:00 UTC of the next): its value in
    USDT at that moment's prices and the net deposits minus withdrawals of the day (valued
    in USDT when they happened). Written once per trader and day; the equity curve and the
    returns are read from these rows."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    value_usdt = models.DecimalField(max_digits=38, decimal_places=8)
    net_flows_usdt = models.DecimalField(max_digits=38, decimal_places=8)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "date"], name="portfolio_snapshot_once_per_day")]
        indexes = [models.Index(fields=["date"], name="portfolio_snapshot_date")]

    def __str__(self):
        return f"{self.user_id} {self.date} {self.value_usdt}"
