"""Names the engine core speaks in: sides, order types, time in force, reason codes.

They are plain strings (interned literals) rather than enums: the hot path compares them
with ``==``/``is`` at C speed, they serialise as themselves, and they are the same words the
public API uses (``API.md``, "Spot orders"), so the runner passes them through unchanged.
"""

BUY = "buy"
SELL = "sell"
SIDES = (BUY, SELL)

MARKET = "market"
LIMIT = "limit"
STOP_MARKET = "stop_market"
STOP_LIMIT = "stop_limit"
TRAILING_STOP = "trailing_stop"
ORDER_TYPES = (MARKET, LIMIT, STOP_MARKET, STOP_LIMIT, TRAILING_STOP)
STOP_TYPES = (STOP_MARKET, STOP_LIMIT, TRAILING_STOP)

GTC = "GTC"
IOC = "IOC"
FOK = "FOK"
TIMES_IN_FORCE = (GTC, IOC, FOK)

# Self-trade prevention: what happens when a taker meets a resting order of its own owner.
# The taker's mode decides (a resting order's mode matters once it takes again: a re-pricing
# amend, a triggered stop). No fill ever pairs one owner.
EXPIRE_MAKER = "expire_maker"  # the resting order is cancelled, the taker carries on (the default)
EXPIRE_TAKER = "expire_taker"  # the taker's remainder is cancelled, the resting order stays
EXPIRE_BOTH = "expire_both"  # both: the resting order and the taker's remainder are cancelled
STP_MODES = (EXPIRE_MAKER, EXPIRE_TAKER, EXPIRE_BOTH)

# Commands, as named in Rejected.command
PLACE = "place"
CANCEL = "cancel"
AMEND = "amend"

PPM = 1_000_000  # trailing percentages and the market band are in parts per million


class Reject:
    """Why a command had no effect (``Rejected.reason``). Stable: the runner maps them to
    API error codes and order statuses, and they are part of the replayable event log."""

    DUPLICATE_ORDER_ID = "duplicate_order_id"  # an order with this id is live in the book
    UNKNOWN_ORDER = "unknown_order"  # cancel/amend of an id that is not live (filled, cancelled, never seen)
    INVALID_SIDE = "invalid_side"
    INVALID_ORDER_TYPE = "invalid_order_type"
    INVALID_TIME_IN_FORCE = "invalid_time_in_force"
    INVALID_QUANTITY = "invalid_quantity"  # not a positive int, or given where a quote amount is
    INVALID_PRICE = "invalid_price"  # missing / not a positive int on limit types, present on market types
    INVALID_STOP_PRICE = "invalid_stop_price"
    INVALID_TRAIL = "invalid_trail"  # trailing stop needs exactly one of trail_ticks > 0, 0 < trail_ppm < 1e6
    INVALID_DISPLAY_QUANTITY = "invalid_display_quantity"  # iceberg: 0 < display <= qty, plain GTC limit only
    INVALID_POST_ONLY = "invalid_post_only"  # post-only is for GTC limit orders only
    INVALID_QUOTE_QUANTITY = "invalid_quote_quantity"  # quote amount: market buys only, not FOK
    INVALID_STP = "invalid_stp"  # not one of STP_MODES
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    FOK_UNFILLABLE = "fok_unfillable"  # checked before any fill: the book cannot fill it entirely
    STOP_WOULD_TRIGGER = "stop_would_trigger"  # the last trade already satisfies the stop
    NO_REFERENCE_PRICE = "no_reference_price"  # trailing stop before any trade: nothing to trail
    AMEND_NO_CHANGE = "amend_no_change"
    AMEND_BELOW_FILLED = "amend_below_filled"  # the new quantity is not above what already filled
    AMEND_NOT_ALLOWED = "amend_not_allowed"  # e.g. a price on an order type that has none


class Cancel:
    """Why an order's remainder was taken off (``Cancelled.reason``). The runner may pass its
    own reason to ``OrderBook.cancel`` (``"user"`` by default, e.g. ``"admin"``,
    ``"expired"``); the engine's own are these."""

    USER = "user"
    SELF_TRADE = "self_trade"  # cancelled by self-trade prevention: the resting order, or the taker (its stp mode)
    IOC_REMAINDER = "ioc_remainder"  # the unfilled rest of an IOC limit order
    NO_LIQUIDITY = "no_liquidity"  # market order: the opposite side ran out
    PROTECTION_BAND = "protection_band"  # market order: the next price is outside the band
    QUOTE_SPENT = "quote_spent"  # quote-amount market buy: what is left buys less than one lot
    # a triggered FOK stop can no longer be rejected (it was accepted): same code as Reject's
    FOK_UNFILLABLE = Reject.FOK_UNFILLABLE
