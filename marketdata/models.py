"""Instruments, index prints, candles and watchlists."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from trading.fields import amount_field


class InstrumentKind(models.TextChoices):
    SPOT = "spot", "Spot"
    OPTION = "option", "Option"


class OptionType(models.TextChoices):
    CALL = "C", "Call"
    PUT = "P", "Put"


class Instrument(models.Model):
    """A tradable symbol: a spot pair (``BTC-USDT``) or an option series
    (``BTC-20261225-100000-C``: underlying, expiry date, strike, call/put)."""

    symbol = models.CharField(max_length=40, unique=True)
    kind = models.CharField(max_length=8, choices=InstrumentKind.choices)
    base = models.CharField(max_length=8, help_text="spot: base asset; option: underlying")
    quote = models.CharField(max_length=8, default="USDT")
    tick_size = amount_field()
    lot_size = amount_field()
    min_notional = amount_field(default=0)
    active = models.BooleanField(default=True, db_index=True)
    # Options only.
    expiry = models.DateTimeField(null=True, blank=True, db_index=True)
    strike = amount_field(null=True, blank=True)
    option_type = models.CharField(max_length=1, choices=OptionType.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "base", "expiry", "strike", "option_type"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="spot") | (Q(expiry__isnull=False) & Q(strike__isnull=False) & ~Q(option_type="")),
                name="instrument_option_fields",
            )
        ]

    def __str__(self):
        return self.symbol

    @property
    def underlying(self) -> str:
        return self.base


class IndexPrint(models.Model):
    """One index computation: the median of the fresh sources, or a stale mark."""

    underlying = models.CharField(max_length=8)
    ts = models.DateTimeField()
    price = amount_field(null=True, blank=True)
    stale = models.BooleanField(default=False)
    sources = models.JSONField(default=dict, help_text="used sources and excluded ones with the reason")

    class Meta:
        ordering = ["-ts"]
        indexes = [models.Index(fields=["underlying", "-ts"])]

    def __str__(self) -> str:
        return f"{self.underlying} {self.price if self.price is not None else 'stale'} at {self.ts:%Y-%m-%d %H:%M:%S}"


class CandleSource(models.TextChoices):
    INDEX = "index", "Index"
    TRADES = "trades", "Trades"


class Candle(models.Model):
    """OHLCV for one interval. The index feed fills ``source=index`` candles for the
    spot symbols; the matching engine fills ``source=trades``."""

    INTERVALS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}

    symbol = models.CharField(max_length=40)
    source = models.CharField(max_length=8, choices=CandleSource.choices)
    interval = models.CharField(max_length=3)
    open_time = models.DateTimeField()
    open = amount_field()
    high = amount_field()
    low = amount_field()
    close = amount_field()
    volume = amount_field(default=0)

    class Meta:
        ordering = ["symbol", "source", "interval", "open_time"]
        constraints = [
            models.UniqueConstraint(fields=["symbol", "source", "interval", "open_time"], name="candle_unique_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval} {self.open_time:%Y-%m-%d %H:%M} ({self.source})"


class WatchlistItem(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlist")
    symbol = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "symbol"], name="watchlist_unique_symbol")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.symbol}"
