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
