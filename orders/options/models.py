"""The options counter's records: quotes, orders, positions and expiry outcomes.

Amounts are ``Decimal`` (USDT at 6 places, underlying quantities at 8, prices per contract
in USDT cents); every USDT movement is a ledger transfer whose id is derived from the row
that caused it (``OptionOrder.transfer_id``, ``OptionExercise.transfer_id``).
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from trading.fields import amount_field


class OptionSide(models.TextChoices):
    BUY = "buy", "Buy to open"
    SELL = "sell", "Sell to close"


class SettlementState(models.TextChoices):
    """Written by the settlement app (the back office) as it settles the outbox event."""

    PENDING = "pending", "Pending"
    SETTLING = "settling", "Settling"
    SETTLED = "settled", "Settled"
    MANUAL_REVIEW = "manual_review", "Manual review"


def _settlement_state():
    return models.CharField(
        max_length=20, choices=SettlementState.choices, default=SettlementState.PENDING, db_index=True
    )


class OptionQuote(models.Model):
    """A firm price from the counter, valid until ``expires_at`` and for one order only.
    Stored so that any web process can honour it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="option_quotes")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=40)
    underlying = models.CharField(max_length=8)
    side = models.CharField(max_length=4, choices=OptionSide.choices)
    contracts = amount_field()
    price_usdt = amount_field(help_text="per contract: mark + spread to buy, mark - spread to sell")
    total_usdt = amount_field()
    mark_usdt = amount_field()
    index_price = amount_field()
    iv = amount_field()
    spread = amount_field(help_text="the counter's half-spread as a fraction of the mark")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["expires_at"], name="optquote_expires")]

    def __str__(self):
        return f"Quote {self.id} {self.side} {self.contracts} {self.series} @ {self.price_usdt}"

    @property
    def price_underlying(self) -> Decimal:
        """The price per contract in BTC/ETH at the quote's index."""
        return self.price_usdt / self.index_price


class OptionOrder(models.Model):
    """One fill against the counter: a buy opens or adds to a long position, a sell closes
    (part of) it. The counter fills in full or refuses, so every stored order is filled."""

    STATUS_FILLED = "filled"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="option_orders")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=40)
    underlying = models.CharField(max_length=8)
    side = models.CharField(max_length=4, choices=OptionSide.choices)
    contracts = amount_field()
    price_usdt = amount_field(help_text="per contract")
    total_usdt = amount_field(help_text="paid (buy) or received (sell)")
    underlying_qty = amount_field(help_text="total_usdt converted at the index (8 places)")
    index_price = amount_field()
    mark_usdt = amount_field()
    iv = amount_field()
    limit_price_usdt = amount_field(null=True, blank=True)
    quote = models.OneToOneField(OptionQuote, null=True, blank=True, on_delete=models.PROTECT, related_name="order")
    realized_pnl_usdt = amount_field(
        null=True, blank=True, help_text="sell: proceeds minus the cost of the contracts sold"
    )
    status = models.CharField(max_length=10, default=STATUS_FILLED, choices=[(STATUS_FILLED, "Filled")])
    client_order_id = models.CharField(max_length=64, blank=True, default="")
    request_hash = models.CharField(max_length=64, blank=True, default="", help_text="what client_order_id stood for")
    settlement_state = _settlement_state()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="optorder_user_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_order_id"], condition=~Q(client_order_id=""), name="optorder_client_id_per_user"
            ),
            models.CheckConstraint(condition=Q(contracts__gt=0), name="optorder_contracts_positive"),
            models.CheckConstraint(condition=Q(total_usdt__gte=0), name="optorder_total_not_negative"),
        ]

    def __str__(self):
        return f"Option order {self.pk} {self.side} {self.contracts} {self.series}"

    @property
    def kind(self) -> str:
        return "open" if self.side == OptionSide.BUY else "close"

    @property
    def transfer_id(self) -> str:
        return f"optord:{self.pk}:premium"

    @property
    def outbox_key(self) -> str:
        return f"option_order:{self.pk}"


class PositionStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    EXERCISED = "exercised", "Exercised at expiry"
    EXPIRED = "expired", "Expired worthless"


class OptionPosition(models.Model):
    """A trader's long holding of one series: one row per (user, series), reopened if the
    trader buys again after closing. ``cost_usdt`` is what the open contracts cost;
    ``average_price_usdt`` is that per contract."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="option_positions")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=40)
    underlying = models.CharField(max_length=8)
    status = models.CharField(max_length=10, choices=PositionStatus.choices, default=PositionStatus.OPEN, db_index=True)
    contracts = amount_field(default=0)
    cost_usdt = amount_field(default=0)
    average_price_usdt = amount_field(default=0)
    realized_pnl_usdt = amount_field(default=0)
    opened_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "instrument"], name="optposition_one_per_user_series"),
            models.CheckConstraint(condition=Q(contracts__gte=0, cost_usdt__gte=0), name="optposition_not_short"),
            models.CheckConstraint(
                condition=~Q(status="open") | Q(contracts__gt=0), name="optposition_open_has_contracts"
            ),
        ]

    def __str__(self):
        return f"{self.user_id} {self.contracts} {self.series} ({self.status})"


class ExerciseOutcome(models.TextChoices):
    EXERCISED = "exercised", "Exercised (in the money)"
    EXPIRED = "expired", "Expired worthless"


class OptionExercise(models.Model):
    """What expiry did to one position: exercised (paid its intrinsic value in USDT at the
    settlement price) or expired worthless. One per position: the expiry run's guard."""

    position = models.OneToOneField(OptionPosition, on_delete=models.PROTECT, related_name="exercise")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="option_exercises")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=40)
    underlying = models.CharField(max_length=8)
    expiry = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=ExerciseOutcome.choices)
    contracts = amount_field()
    settlement_price = amount_field(help_text="the index's 30-minute TWAP before expiry")
    intrinsic_usdt = amount_field(help_text="per contract")
    payout_usdt = amount_field()
    underlying_qty = amount_field()
    realized_pnl_usdt = amount_field()
    settlement_state = _settlement_state()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.series} {self.outcome} for {self.user_id}: {self.payout_usdt} USDT"

    @property
    def transfer_id(self) -> str:
        return f"optex:{self.position_id}:{self.expiry:%Y%m%d}"

    @property
    def outbox_key(self) -> str:
        return f"option_exercise:{self.pk}"


__all__ = [
    "ExerciseOutcome",
    "OptionExercise",
    "OptionOrder",
    "OptionPosition",
    "OptionQuote",
    "OptionSide",
    "PositionStatus",
    "SettlementState",
]
