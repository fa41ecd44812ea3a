"""How the platform writes numbers and times for clients: the API's responses (through the
serializer fields in ``trading.schema``), the websocket streams, and every payload a
selector or service builds.

* ``decimal_string`` — a decimal string with no exponent and no plus sign: normalized
  (``"65000.12"``, ``"0.5"``, ``"100"``) by default, at an asset's scale
  (``trading.money.fmt``: rounded down, ``"0.50000000"``), or on a step
  (``Decimal("0.01")``: ``"1234.50"``, rounded half-even as ``Decimal.quantize`` does).
* ``utc_string`` — ISO 8601 in UTC with a ``Z``: ``"2026-12-25T08:00:00Z"``, with
  microseconds when the time has them.
* ``sentence`` — free text someone typed (a rejection reason) as one sentence inside a
  message: trimmed, ending with exactly one full stop (or its own ``?``/``!``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from .money import fmt


def decimal_string(value, *, asset: str | None = None, step: Decimal | None = None) -> str | None:
    """``value`` (a Decimal, or an int) as the API writes it; None stays None."""
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError("decimal_string takes a Decimal: a float has no exact decimal value to write")
    value = value if isinstance(value, Decimal) else Decimal(value)
    if asset is not None:
        return fmt(asset, value)
    if step is not None:
        return f"{value.quantize(step):f}"
    return f"{value.normalize():f}"


def utc_string(value: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 in UTC with a ``Z``; None stays None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sentence(text: str) -> str:
    """``text`` trimmed and ending with one ``.`` (kept as it is if it ends with ``.!?``)."""
    text = " ".join(str(text).split())
    if not text:
        return ""
    return text if text[-1] in ".!?" else f"{text}."
