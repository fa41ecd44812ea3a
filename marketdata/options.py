"""The option chain: marks from the smile, the counter's bid/ask, IV, greeks and open interest
per strike.

Premiums are priced in USDT on the index (Black-76 with the index as the forward; no rates),
and also shown in the underlying, Deribit-style (``mark_underlying = mark_usdt / index``).
The counter quotes mark ± a half-spread that scales with the contract's vega (wider in the
last days), and never bids below intrinsic value less a small fee (``pricing.spread``).
Open interest comes from the options counter (a higher app) through ``open_interest_register``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

import numpy as np
from django.conf import settings
from django.utils import timezone as dj_timezone

from trading.errors import DomainError, NotFound, ValidationFailed
from trading.formatting import decimal_string, utc_string

from .models import Instrument, InstrumentKind
from .pricing import black76_chain, default_smile, year_fraction
from .pricing.smile import DEFAULT_ATM_VOL
from .pricing.spread import SpreadParams, bid_floor, half_spread
from .selectors import index_is_fresh, index_latest

USDT = Decimal("0.01")
CONTRACTS = Decimal("0.01")
UNDERLYING_QUANTUM = Decimal("0.00000001")


class IndexStale(DomainError):
    status = 503
    code = "index_stale"


def spread_params(underlying: str) -> SpreadParams:
    """The counter's spread settings for ``underlying`` (OPTION_SPREAD_*, OPTION_BID_INTRINSIC_FEE_BPS)."""
    return SpreadParams(
        vol_points=settings.OPTION_SPREAD_VOL_POINTS.get(underlying, 1.0),
        short_boost=settings.OPTION_SPREAD_SHORT_BOOST,
        short_days=settings.OPTION_SPREAD_SHORT_DAYS,
        delta_cost=settings.OPTION_SPREAD_DELTA_BPS / 10_000,
        cap=settings.OPTION_SPREAD_CAP,
        min_half=settings.OPTION_SPREAD_MIN_USDT,
        intrinsic_fee=settings.OPTION_BID_INTRINSIC_FEE_BPS / 10_000,
    )


# --- open interest (read from the options counter, registered at start-up) ----------------------

_open_interest_reader: list[Callable[..., dict[str, Decimal]]] = []


def open_interest_register(read: Callable[..., dict[str, Decimal]]) -> None:
    """The options counter registers ``read(underlying=, expiry=) -> {series: contracts}`` at
    start-up: the open positions' contracts per series (``expiry`` None for every expiry)."""
    _open_interest_reader[:] = [read]


def open_interest(*, underlying: str, expiry: datetime | None = None) -> dict[str, Decimal]:
    """Contracts held in open positions per series (empty when no reader is registered)."""
    return _open_interest_reader[0](underlying=underlying, expiry=expiry) if _open_interest_reader else {}


def live_index(underlying: str) -> Decimal:
    latest = index_latest(underlying=underlying)
    if not index_is_fresh(latest):
        raise IndexStale(f"The {underlying} index price is stale; option prices are unavailable until it recovers.")
    return latest.price


def parse_expiry(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        if "T" in raw:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        day = date.fromisoformat(raw) if "-" in raw else datetime.strptime(raw, "%Y%m%d").date()
        return datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC)
    except ValueError:
        raise ValidationFailed(
            "expiry must be a date (2026-12-25) or an ISO time.", fields={"expiry": ["Invalid date."]}
        ) from None


def chain(*, underlying: str, expiry: datetime | None = None, now: datetime | None = None) -> dict:
    underlying = (underlying or "").upper()
    if underlying not in DEFAULT_ATM_VOL:
        raise ValidationFailed("underlying must be BTC or ETH.", fields={"underlying": ["BTC or ETH."]})
    now = now or dj_timezone.now()
    index = live_index(underlying)
    series = Instrument.objects.filter(kind=InstrumentKind.OPTION, base=underlying, active=True, expiry__gt=now)
    if expiry is not None:
        series = series.filter(expiry=expiry)
    by_expiry: dict[datetime, dict[Decimal, dict[str, str]]] = defaultdict(dict)
    for symbol, exp, strike, option_type in series.values_list("symbol", "expiry", "strike", "option_type"):
        by_expiry[exp].setdefault(strike, {})[option_type] = symbol
    if expiry is not None and not by_expiry:
        raise NotFound(f"No live {underlying} series expire at {expiry:%Y-%m-%d %H:%M} UTC.", code="unknown_expiry")
    held = open_interest(underlying=underlying, expiry=expiry)
    return {
        "underlying": underlying,
        "index_price": decimal_string(index),
        "time": utc_string(now),
        "expiries": [_expiry_block(underlying, index, exp, by_expiry[exp], now, held) for exp in sorted(by_expiry)],
    }


def _expiry_block(
    underlying: str, index: Decimal, expiry: datetime, strikes: dict, now: datetime, held: dict[str, Decimal]
) -> dict:
    years = max(year_fraction(now, expiry), 1e-9)
    ordered = sorted(strikes)
    forward = float(index)
    strike_array = np.array([float(s) for s in ordered])
    smile = default_smile(DEFAULT_ATM_VOL[underlying], years)
    vols = smile.vols(strike_array, forward)
    valuation = black76_chain(forward, strike_array, years, vols)
    spreads = {
        side: _spread_arrays(side, forward, strike_array, values, years=years, params=spread_params(underlying))
        for side, values in (("C", valuation.call), ("P", valuation.put))
    }
    rows = []
    for i, strike in enumerate(ordered):
        row = {"strike": decimal_string(strike)}
        for side, key, values in (("C", "call", valuation.call), ("P", "put", valuation.put)):
            symbol = strikes[strike].get(side)
            if symbol is None:
                continue
            half, least = spreads[side]
            quoted = _counter_prices(float(values.price[i]), float(half[i]), float(least[i]))
            leg = _leg(symbol, index, quoted, float(vols[i]), values, i)
            leg["open_interest"] = decimal_string(held.get(symbol, Decimal(0)), step=CONTRACTS)
            row[key] = leg
        rows.append(row)
    return {"expiry": utc_string(expiry), "years": round(years, 6), "atm_vol": _fixed(smile.atm_vol, 4), "rows": rows}


def _spread_arrays(side: str, forward: float, strikes, values, *, years: float, params: SpreadParams):
    """The counter's half-spread and the bid's floor (intrinsic value less the fee) per strike,
    in USDT, over a whole expiry at once (``pricing.spread``)."""
    half = half_spread(
        price=values.price, vega=values.vega, delta=values.delta, forward=forward, days=years * 365.0, params=params
    )
    least = bid_floor(1.0 if side == "C" else -1.0, forward, strikes, params=params)
    return np.broadcast_to(half, np.shape(strikes)), np.broadcast_to(least, np.shape(strikes))


def _counter_prices(price: float, half: float, least: float) -> tuple[Decimal, Decimal, Decimal]:
    """Mark, bid and ask in USDT (cents) from the model price, the half-spread and the bid's
    floor: the mark to the nearest cent, the ask a whole half-spread (in cents, at least one)
    above it, the bid as far below but never below the floor (rounded up to the cent) nor
    below 0 nor above the mark."""
    mark = Decimal(repr(price)).quantize(USDT, rounding=ROUND_HALF_EVEN)
    half_cents = max(Decimal(repr(half)).quantize(USDT, rounding=ROUND_HALF_EVEN), USDT)
    floor = Decimal(repr(least)).quantize(USDT, rounding=ROUND_CEILING)
    bid = min(max(mark - half_cents, floor, Decimal(0)), mark)
    return mark, bid.quantize(USDT), (mark + half_cents).quantize(USDT)


def _leg(symbol: str, index: Decimal, quoted: tuple[Decimal, Decimal, Decimal], vol: float, values, i: int) -> dict:
    mark, bid, ask = quoted
    return {
        "series": symbol,
        "mark_usdt": decimal_string(mark, step=USDT),
        "mark_underlying": decimal_string(mark / index, step=UNDERLYING_QUANTUM),
        "bid_usdt": decimal_string(bid, step=USDT),
        "ask_usdt": decimal_string(ask, step=USDT),
        "iv": _fixed(vol, 4),
        "delta": _fixed(float(values.delta[i]), 4),
        "gamma": _fixed(float(values.gamma[i]), 8),
        "vega": _fixed(float(values.vega[i]), 4),
        "theta": _fixed(float(values.theta[i]), 4),
    }


@dataclass(frozen=True)
class SeriesPrice:
    """One series priced exactly as the chain prices it: the smile's vol at its strike,
    Black-76 on the index, and the counter's bid/ask around the mark (USDT per contract)."""

    series: str
    underlying: str
    index: Decimal
    time: datetime
    years: float
    iv: float
    spread: float  # the ask's half-spread as a fraction of the mark (0 for a zero mark)
    mark_usdt: Decimal
    bid_usdt: Decimal
    ask_usdt: Decimal

    @property
    def bid_spread(self) -> float:
        """The bid's distance below the mark as a fraction of the mark: the half-spread, or
        less where the intrinsic-value floor holds the bid up (0 for a zero mark)."""
        return float((self.mark_usdt - self.bid_usdt) / self.mark_usdt) if self.mark_usdt > 0 else 0.0

    @property
    def mark_underlying(self) -> Decimal:
        return (self.mark_usdt / self.index).quantize(UNDERLYING_QUANTUM)


def series_price(*, instrument: Instrument, now: datetime | None = None, index: Decimal | None = None) -> SeriesPrice:
    """The chain's numbers for one option series. ``index`` defaults to the live index
    (``IndexStale`` when there is none)."""
    underlying = instrument.base
    now = now or dj_timezone.now()
    index = live_index(underlying) if index is None else index
    years = max(year_fraction(now, instrument.expiry), 1e-9)
    strikes = np.array([float(instrument.strike)])
    vols = default_smile(DEFAULT_ATM_VOL[underlying], years).vols(strikes, float(index))
    valuation = black76_chain(float(index), strikes, years, vols)
    values = valuation.call if instrument.option_type == "C" else valuation.put
    half, least = _spread_arrays(
        instrument.option_type, float(index), strikes, values, years=years, params=spread_params(underlying)
    )
    mark, bid, ask = _counter_prices(float(values.price[0]), float(half[0]), float(least[0]))
    spread = float((ask - mark) / mark) if mark > 0 else 0.0
    return SeriesPrice(
        series=instrument.symbol,
        underlying=underlying,
        index=index,
        time=now,
        years=years,
        iv=float(vols[0]),
        spread=spread,
        mark_usdt=mark,
        bid_usdt=bid,
        ask_usdt=ask,
    )


def _fixed(value: float, places: int) -> str:
    """A model output (a float: vol, greek) as a decimal string of ``places`` decimals."""
    return f"{Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):f}"
