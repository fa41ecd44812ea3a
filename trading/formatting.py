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

What a person reads (pages, messages) is written by the ``display_*`` helpers, the same rules
as the browser's ``frontend/lib/format.js`` (the template filters in ``trading.templatetags.display``
call them):

* numbers have thousands separators and a typographic minus: ``"−1,234.50"``;
* an amount of an asset has the asset's display places (``DISPLAY_PLACES``): USDT exactly 2,
  BTC and ETH every significant decimal up to their 8, at least 2 (``"0.50"``, ``"0.00012345"``);
* a movement of money carries its sign: ``"+600.00"``, ``"−0.015"``;
* a price has its market's tick places (``"65,078.14"``);
* a ratio is a percentage with one decimal: ``"55.0%"``;
* a moment is ``"06 Dec 2026 08:03:05 UTC"``, in the reader's time zone with the zone named
  (``"06 Dec 2026 09:03:05 UTC+1"``).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, localcontext

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


# --- for people: pages and messages -------------------------------------------------------------

MINUS = "\u2212"
DASH = "\u2014"
# asset -> (fewest, most) decimals shown; the ledger keeps more for USDT (6)
DISPLAY_PLACES: dict[str, tuple[int, int]] = {"USDT": (2, 2), "BTC": (2, 8), "ETH": (2, 8)}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _decimal(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, (bool, float)):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def display_number(value, *, places: int | None = None, min_places: int = 0, max_places: int | None = None) -> str:
    """``value`` grouped by thousands with a typographic minus: exactly ``places`` decimals
    (rounded half-up), or every significant decimal up to ``max_places`` and at least
    ``min_places``. None is a dash; what is not a number is shown as it is."""
    number = _decimal(value)
    if number is None:
        return DASH if value is None or value == "" else str(value)
    with localcontext(prec=80):
        if places is not None:
            number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        elif max_places is not None:
            number = number.quantize(Decimal(1).scaleb(-max_places), rounding=ROUND_HALF_UP)
    text = f"{abs(number):f}"
    whole, _, fraction = text.partition(".")
    if places is None:
        fraction = fraction.rstrip("0").ljust(min_places, "0")
    negative = number < 0 and any(c not in "0." for c in text)
    return f"{MINUS if negative else ''}{int(whole):,}{'.' + fraction if fraction else ''}"


def display_amount(value, asset: str | None = None) -> str:
    """An amount of ``asset`` at its display places: ``"24,609.16"`` USDT, ``"0.5"`` → ``"0.50"`` BTC."""
    low, high = DISPLAY_PLACES.get((asset or "").upper(), (2, 8))
    if low == high:
        return display_number(value, places=low)
    return display_number(value, min_places=low, max_places=high)


def display_signed(value, asset: str | None = None) -> str:
    """A movement of ``asset``: ``"+600.00"``, ``"−0.015"``; zero has no sign."""
    number = _decimal(value)
    text = display_amount(value, asset)
    return f"+{text}" if number is not None and number > 0 and text.strip("0.,") != "" else text


def display_price(value, tick: Decimal | None = None) -> str:
    """A price at its tick's places (``Decimal("0.01")`` → ``"65,078.14"``); two without a tick."""
    places = max(0, -tick.normalize().as_tuple().exponent) if tick else 2
    return display_number(value, places=places)


def display_percent(ratio, places: int = 1) -> str:
    """A ratio as a percentage: ``Decimal("0.55")`` → ``"55.0%"``."""
    number = _decimal(ratio)
    return DASH if number is None else f"{display_number(number * 100, places=places)}%"


def zone_label(moment: datetime) -> str:
    """``UTC``, ``UTC+1``, ``UTC+5:30``, ``UTC-3``: the offset the moment is shown at."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    if not minutes:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}{f':{rest:02d}' if rest else ''}"


def display_datetime(value: datetime | None, zone: tzinfo | None = None) -> str:
    """``"06 Dec 2026 08:03:05 UTC"`` in ``zone`` (the active zone of the page by default)."""
    if value is None:
        return ""
    if zone is None:
        from django.utils import timezone

        zone = timezone.get_current_timezone()
    moment = value.astimezone(zone)
    return f"{display_date(moment, zone=zone)} {moment:%H:%M:%S} {zone_label(moment)}"


def display_date(value: datetime | None, zone: tzinfo | None = None) -> str:
    """``"06 Dec 2026"``; a datetime is taken in ``zone`` (the page's zone by default)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if zone is None:
            from django.utils import timezone

            zone = timezone.get_current_timezone()
        value = value.astimezone(zone)
    return f"{value.day:02d} {_MONTHS[value.month - 1]} {value.year}"
