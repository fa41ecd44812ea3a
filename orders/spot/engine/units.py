"""Decimal <-> integer conversion between the platform (Decimal prices and quantities) and
the engine core (int ticks and lots), for one instrument's tick and lot size.

Prices and quantities must be exact multiples of the tick / lot: a value that is not is a
validation error for order entry, never silently rounded. Quote amounts (a market buy's
``quote_quantity``) are rounded down to the notional unit (tick x lot) so the engine never
spends more than the trader gave; percentages become parts per million.
"""

from decimal import Decimal, InvalidOperation

from .constants import PPM

__all__ = ["UnitError", "Units", "from_steps", "to_steps"]


class UnitError(ValueError):
    """A value that is not a positive exact multiple of its step (or not a number)."""


def _decimal(value, what):
    if isinstance(value, float):
        raise UnitError(f"{what}: floats are not accepted, pass a Decimal or a str")
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise UnitError(f"{what}: {value!r} is not a number") from None
    if not result.is_finite():
        raise UnitError(f"{what}: {value!r} is not finite")
    return result


def to_steps(value, step, what="value"):
    """``value`` / ``step`` as an int; UnitError unless ``value`` is a positive multiple."""
    value = _decimal(value, what)
    if value <= 0:
        raise UnitError(f"{what}: {value} must be positive")
    try:
        count, rest = divmod(value, step)
    except InvalidOperation:
        raise UnitError(f"{what}: {value} is out of range for step {step}") from None
    if rest:
        raise UnitError(f"{what}: {value} is not a multiple of {step}")
    return int(count)


def from_steps(count, step):
    """``count`` steps as a Decimal with the step's exponent (``65000.00`` for tick 0.01)."""
    return (step * count).quantize(step)


class Units:
    """The conversions for one instrument: ``Units(instrument.tick_size, instrument.lot_size)``.

    The engine's quote amount unit is one tick times one lot (trade notional = price ticks x
    qty lots in that unit)."""

    __slots__ = ("lot", "quote_unit", "tick")

    def __init__(self, tick_size, lot_size):
        self.tick = _decimal(tick_size, "tick_size")
        self.lot = _decimal(lot_size, "lot_size")
        if self.tick <= 0 or self.lot <= 0:
            raise UnitError("tick and lot sizes must be positive")
        self.quote_unit = self.tick * self.lot

    def price_to_ticks(self, price):
        return to_steps(price, self.tick, "price")

    def ticks_to_price(self, ticks):
        return from_steps(ticks, self.tick)

    def qty_to_lots(self, qty):
        return to_steps(qty, self.lot, "quantity")

    def lots_to_qty(self, lots):
        return from_steps(lots, self.lot)

    def quote_to_int(self, amount):
        """A quote amount (e.g. USDT to spend) in tick x lot units, rounded down."""
        amount = _decimal(amount, "quote amount")
        if amount <= 0:
            raise UnitError(f"quote amount: {amount} must be positive")
        try:
            units = int(amount // self.quote_unit)
        except InvalidOperation:
            raise UnitError(f"quote amount: {amount} is out of range") from None
        if units <= 0:
            raise UnitError(f"quote amount: {amount} is less than one tick x lot ({self.quote_unit})")
        return units

    def int_to_quote(self, units):
        return from_steps(units, self.quote_unit)

    def quote_value(self, price_ticks, qty_lots):
        """The quote value of ``qty_lots`` at ``price_ticks``, exactly."""
        return from_steps(price_ticks * qty_lots, self.quote_unit)

    @staticmethod
    def percent_to_ppm(percent):
        """A trailing percentage (``"0.5"`` meaning 0.5%) in parts per million, exactly."""
        value = _decimal(percent, "percent") * (PPM // 100)
        if value <= 0 or value >= PPM or value != value.to_integral_value():
            raise UnitError(f"percent: {percent} must be in (0, 100) with at most 4 decimal places")
        return int(value)
