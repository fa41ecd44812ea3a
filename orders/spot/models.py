"""The spot exchange's records: orders and trades (written by the engine runner), the
engines' state, smart-routing children sent to outside venues, and RFQ quotes."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from trading.fields import ExactDecimalField, amount_field


class SpotStatus(models.TextChoices):
    NEW = "new", "New (waiting for the engine)"
    OPEN = "open", "Open"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"
    TRIGGERED_PENDING = "triggered_pending", "Stop waiting for its trigger"
    ROUTING = "routing", "Smart order: its children are working"


class SelfTradePrevention(models.TextChoices):
    """What happens when an order, taking, meets a resting order of the same trader (the
    engine's ``stp`` modes)."""

    EXPIRE_MAKER = "expire_maker", "Cancel the resting order; the incoming one carries on"
    EXPIRE_TAKER = "expire_taker", "Cancel the incoming order's remainder; the resting one stays"
    EXPIRE_BOTH = "expire_both", "Cancel both"


LIVE_STATUSES = (SpotStatus.NEW, SpotStatus.OPEN, SpotStatus.PARTIALLY_FILLED, SpotStatus.TRIGGERED_PENDING)
FINAL_STATUSES = (SpotStatus.FILLED, SpotStatus.CANCELLED, SpotStatus.REJECTED)


class SpotOrder(models.Model):
    """One spot order. Order entry inserts it (status ``new``) with its hold; from then on
    only the symbol's engine runner writes it (statuses, fills, hold), except
    ``cancel_requested_at``, which a cancel request sets and the runner acts on.

    The hold: a pending ledger transfer of ``hold_amount`` of ``hold_asset`` (USDT for a buy,
    the base asset for a sell) from the trader to the spot clearing account, id
    ``spot:<id>:hold:<hold_seq>``. Each batch that fills the order posts what it spent from
    the hold (the rest is released by the post) and, while the order stays open, re-holds
    the remainder under the next ``hold_seq``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="spot_orders")
    symbol = models.CharField(max_length=20)
    side = models.CharField(max_length=4)
    type = models.CharField(max_length=16)
    time_in_force = models.CharField(max_length=3, default="GTC")
    post_only = models.BooleanField(default=False)
    quantity = amount_field(null=True, blank=True, help_text="base quantity; empty for a quote-amount market buy")
    quote_quantity = amount_field(null=True, blank=True, help_text="market buys: USDT to spend")
    price = amount_field(null=True, blank=True, help_text="limit price (limit, stop-limit)")
    protect_price = amount_field(
        null=True, blank=True, help_text="buys without a limit: the worst price the hold covers"
    )
    stop_price = amount_field(null=True, blank=True)
    trail_amount = amount_field(null=True, blank=True)
    trail_percent = ExactDecimalField(max_digits=9, decimal_places=4, null=True, blank=True)
    trail_reference = amount_field(null=True, blank=True, help_text="last trade price when a trailing stop was placed")
    display_quantity = amount_field(null=True, blank=True, help_text="iceberg: the part shown in the book")
    hidden_quantity = amount_field(null=True, blank=True, help_text="iceberg: the reserve not shown yet (engine state)")
    route = models.CharField(max_length=8, default="book", help_text="book, or smart (split across venues)")
    stp = models.CharField(
        max_length=12,
        choices=SelfTradePrevention.choices,
        default=SelfTradePrevention.EXPIRE_MAKER,
        help_text="self-trade prevention: what happens when it meets the trader's own resting order",
    )
    status = models.CharField(max_length=20, choices=SpotStatus.choices, default=SpotStatus.NEW)
    reject_reason = models.CharField(max_length=40, blank=True, default="")
    cancel_reason = models.CharField(max_length=40, blank=True, default="")
    filled_quantity = amount_field(default=0)
    filled_quote = amount_field(default=0, help_text="sum of fill notionals (USDT)")
    fees_paid = amount_field(default=0, help_text="in the asset received")
    hold_asset = models.CharField(max_length=8)
    hold_amount = amount_field(help_text="what the current hold still reserves")
    hold_seq = models.IntegerField(default=0)
    client_order_id = models.CharField(max_length=64, blank=True, default="")
    request_hash = models.CharField(max_length=64, blank=True, default="")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="smart routing: the parent of a child order",
    )
    queue_seq = models.BigIntegerField(
        null=True, blank=True, help_text="engine sequence of its place in the queue: accepted, triggered or refreshed"
    )
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-id"], name="spot_user_recent"),
            # the runner's inbox and its rebuild: small partial indexes
            models.Index(fields=["symbol", "id"], condition=Q(status="new"), name="spot_new_by_symbol"),
            models.Index(
                fields=["symbol", "id"],
                condition=Q(status__in=["open", "partially_filled", "triggered_pending"]),
                name="spot_live_by_symbol",
            ),
            # the open-order limit's count, for every order entered
            models.Index(
                fields=["user"],
                condition=Q(status__in=["new", "open", "partially_filled", "triggered_pending"]),
                name="spot_live_by_user",
            ),
            models.Index(
                fields=["symbol"],
                condition=Q(cancel_requested_at__isnull=False)
                & Q(status__in=["new", "open", "partially_filled", "triggered_pending"]),
                name="spot_cancel_requests",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_order_id"], condition=~Q(client_order_id=""), name="spot_client_id_per_user"
            ),
            models.CheckConstraint(condition=Q(hold_amount__gte=0), name="spot_hold_not_negative"),
            models.CheckConstraint(condition=Q(filled_quantity__gte=0), name="spot_filled_not_negative"),
        ]

    def __str__(self):
        return f"Spot order {self.pk} {self.side} {self.type} {self.symbol}"

    def hold_id(self, seq: int | None = None) -> str:
        return f"spot:{self.pk}:hold:{self.hold_seq if seq is None else seq}"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def price_quantum(self):
        """Average prices are shown to 1/100 of the tick (they fall between ticks)."""
        return Decimal("0.0001") if self.symbol.endswith("USDT") else Decimal("0.00000001")

    @property
    def average_price(self):
        """What the fills cost a unit on average, to ``price_quantum``; None before a fill."""
        filled = self.filled_quantity
        return (self.filled_quote / filled).quantize(self.price_quantum) if filled else None

    @property
    def remaining_quantity(self):
        return None if self.quantity is None else self.quantity - self.filled_quantity


class SpotTrade(models.Model):
    """One match in the book: both sides' fills in one row (each trader's execution report
    is their side of it). ``seq`` is the engine event sequence of the trade."""

    symbol = models.CharField(max_length=20)
    seq = models.BigIntegerField()
    price = amount_field()
    quantity = amount_field()
    quote_amount = amount_field(help_text="price x quantity in USDT, rounded down to the cent-micro")
    taker_side = models.CharField(max_length=4)
    # No database constraint on these: the engine runner is the only writer and takes the ids
    # from orders it holds. The constraint checks at its commit cost as much as the rest of a
    # batch (bench/runner.py), and they share-locked the users' rows, which order entry locks.
    maker_order = models.ForeignKey(SpotOrder, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    taker_order = models.ForeignKey(SpotOrder, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    maker_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    taker_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    maker_fee = amount_field()
    taker_fee = amount_field()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["symbol", "-id"], name="spottrade_symbol_recent"),
            models.Index(fields=["maker_user", "-id"], name="spottrade_maker_recent"),
            models.Index(fields=["taker_user", "-id"], name="spottrade_taker_recent"),
            models.Index(fields=["maker_order"], name="spottrade_maker_order"),
            models.Index(fields=["taker_order"], name="spottrade_taker_order"),
        ]
        constraints = [models.UniqueConstraint(fields=["symbol", "seq"], name="spottrade_symbol_seq")]

    def __str__(self) -> str:
        return f"{self.symbol} trade {self.seq}: {self.quantity} at {self.price}"


class EngineState(models.Model):
    """Per symbol: the engine's last event sequence and last trade price, written in every
    batch's transaction (so a rebuilt book continues the sequence)."""

    symbol = models.CharField(max_length=20, primary_key=True)
    seq = models.BigIntegerField(default=0)
    last_price = amount_field(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.symbol} engine at seq {self.seq}"


class AmendStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the engine"
    APPLIED = "applied", "Applied by the engine"
    REJECTED = "rejected", "Refused (the order is as it was)"


class SpotAmend(models.Model):
    """A request to change an open order's price and/or total quantity (filled included, as
    in FIX). Order entry inserts it (``pending``) with a reserve hold for what the change may
    cost beyond the order's hold (``spot:<order>:amend:<id>``, absent when nothing more is
    needed); the symbol's engine runner applies or refuses it, replaces the order's hold by
    one of the new size (``spot:<order>:hold:<n+1>``) and voids the reserve in one batch."""

    order = models.ForeignKey(SpotOrder, on_delete=models.PROTECT, related_name="amends")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    symbol = models.CharField(max_length=20)
    price = amount_field(null=True, blank=True, help_text="the new limit price; empty: unchanged")
    quantity = amount_field(null=True, blank=True, help_text="the new total quantity; empty: unchanged")
    reserve = amount_field(default=0, help_text="held besides the order's hold until the engine decides")
    status = models.CharField(max_length=10, choices=AmendStatus.choices, default=AmendStatus.PENDING)
    reason = models.CharField(max_length=40, blank=True, default="")
    priority_kept = models.BooleanField(null=True, blank=True, help_text="applied: whether it kept its time priority")
    idempotency_key = models.CharField(max_length=64, blank=True, default="")
    request_hash = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["symbol", "id"], condition=Q(status="pending"), name="spot_amend_pending"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["order"], condition=Q(status="pending"), name="spot_amend_one_pending"),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"], condition=~Q(idempotency_key=""), name="spot_amend_key_per_user"
            ),
        ]

    def __str__(self):
        return f"Amend {self.pk} of spot order {self.order_id}"

    def reserve_id(self) -> str:
        return f"spot:{self.order_id}:amend:{self.pk}"


# --- smart order routing and RFQ ------------------------------------------------------------------


class VenueOrderStatus(models.TextChoices):
    PENDING = "pending", "Recorded, not sent yet"
    SENT = "sent", "Sent: no answer recorded yet"
    UNKNOWN = "unknown", "Timed out: to be resolved by a lookup"
    FILLED = "filled", "Filled"
    PARTIALLY_FILLED = "partially_filled", "Partly filled, the rest expired (IOC: final)"
    CANCELLED = "cancelled", "Nothing filled"
    REJECTED = "rejected", "Refused by the venue"


VENUE_FINAL_STATUSES = (
    VenueOrderStatus.FILLED,
    VenueOrderStatus.PARTIALLY_FILLED,
    VenueOrderStatus.CANCELLED,
    VenueOrderStatus.REJECTED,
)


class VenueOrder(models.Model):
    """A smart order's child sent to an outside venue as an IOC limit order.

    Its funds: a hold ``venue:<client_order_id>:hold`` from the trader to the venue funding
    account, posted for what the fill spent (the rest released) when the venue answers; the
    asset received is paid from the venue funding account, the fee to the fees account. The
    ``client_order_id`` is derived from the parent and the venue, so it is the same on every
    attempt and a timeout is resolved by looking it up."""

    parent = models.ForeignKey(SpotOrder, on_delete=models.PROTECT, related_name="venue_children")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    venue = models.CharField(max_length=40)
    symbol = models.CharField(max_length=20)
    client_order_id = models.CharField(max_length=64, unique=True)
    side = models.CharField(max_length=4)
    quantity = amount_field()
    limit_price = amount_field()
    status = models.CharField(max_length=20, choices=VenueOrderStatus.choices, default=VenueOrderStatus.PENDING)
    attempts = models.IntegerField(default=0, help_text="sends so far; after one, a lookup comes before anything else")
    venue_order_id = models.CharField(max_length=64, blank=True, default="")
    filled_quantity = amount_field(default=0)
    filled_quote = amount_field(default=0)
    average_price = amount_field(null=True, blank=True)
    fee = amount_field(default=0, help_text="in the asset received")
    hold_asset = models.CharField(max_length=8)
    hold_amount = amount_field()
    error = models.CharField(max_length=300, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["status"], condition=Q(status__in=["pending", "sent", "unknown"]), name="venueorder_unresolved"
            )
        ]

    def __str__(self):
        return f"Venue order {self.client_order_id} on {self.venue}"

    def transfer_id(self, leg: str) -> str:
        return f"venue:{self.client_order_id}:{leg}"

    @property
    def is_final(self) -> bool:
        return self.status in VENUE_FINAL_STATUSES


class RfqQuote(models.Model):
    """A firm price from the market maker for a block, valid until ``expires_at``; accepting
    it exchanges the assets between the trader and the market maker at exactly ``price``
    (ledger ids ``rfq:<id>:quote`` and ``rfq:<id>:base``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rfq_quotes")
    symbol = models.CharField(max_length=20)
    side = models.CharField(max_length=4, help_text="the trader's side")
    quantity = amount_field()
    price = amount_field()
    reference_price = amount_field(help_text="the aggregated book's VWAP for the quantity")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accept_key = models.CharField(max_length=64, blank=True, default="", help_text="Idempotency-Key of the accept")
    quote_amount = amount_field(null=True, blank=True, help_text="USDT exchanged on accept")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="rfq_user_recent")]

    def __str__(self):
        return f"RFQ {self.pk} {self.side} {self.quantity} {self.symbol}"

    @property
    def status(self) -> str:
        return "accepted" if self.accepted_at else "open"


__all__ = [
    "FINAL_STATUSES",
    "LIVE_STATUSES",
    "VENUE_FINAL_STATUSES",
    "AmendStatus",
    "EngineState",
    "RfqQuote",
    "SpotAmend",
    "SpotOrder",
    "SpotStatus",
    "SpotTrade",
    "VenueOrder",
    "VenueOrderStatus",
]
