"""Portfolio reads: live prices, the valuation (``GET /portfolio``), open lots and realized PnL.

Lots and PnL come from the trader's replayed book (``core``, ``history``), kept in the cache
and extended with only what is new (``books``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.core.cache import cache
from django.utils import timezone

from marketdata.models import IndexPrint, Instrument, InstrumentKind
from marketdata.options import series_price
from marketdata.selectors import index_is_fresh, spot_book_key
from trading.errors import ValidationFailed
from trading.money import ASSETS, check_asset

from . import books, core, history

MAX_PNL_RANGE = timedelta(days=5 * 366)
WEIGHT_STEP = Decimal("0.000001")
OPTION_MARK_STEP = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)


def check_method(method: str) -> str:
    if method not in core.METHODS:
        raise ValidationFailed(f"Unknown method {method!r}.", fields={"method": [f"One of {', '.join(core.METHODS)}."]})
    return method


# --- prices -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """USDT per unit. ``stale``: not from a live market (the index feed is down or old): the
    last price known is shown, marked, and None only when there has never been one."""

    price: Decimal | None
    at: datetime | None
    stale: bool
    source: str  # unit (USDT), last_trade, index, none


def prices_now(*, now: datetime | None = None) -> dict[str, Price]:
    """Each asset's live price, as the ticker shows it: the last trade on our book, or the
    index before any trade; USDT is one. Marked stale while the index is not fresh."""
    now = now or timezone.now()
    return _spot_prices(now, _latest_index())


def index_prices(*, now: datetime | None = None) -> dict[str, Price]:
    """The index per underlying (what option marks are priced on): the latest print, or the
    last one with a price, marked stale, while the feed is down."""
    now = now or timezone.now()
    return _index_prices(now, _latest_index())


_UNDERLYINGS = tuple(asset for asset in ASSETS if asset != core.CASH)


def _spot_prices(now: datetime, indexes: dict[str, IndexPrint]) -> dict[str, Price]:
    markets = cache.get_many([spot_book_key(f"{asset}-USDT") for asset in _UNDERLYINGS])
    prices = {core.CASH: Price(ONE, now, False, "unit")}
    by_index = _index_prices(now, indexes)
    for asset in _UNDERLYINGS:
        market = markets.get(spot_book_key(f"{asset}-USDT")) or {}
        index = by_index[asset]
        if market.get("last"):
            trades = market.get("trades") or []
            when = _parse_time(trades[0].get("time")) if trades else None
            prices[asset] = Price(Decimal(market["last"]), when or index.at, index.stale, "last_trade")
        else:
            prices[asset] = index
    return prices


def _index_prices(now: datetime, indexes: dict[str, IndexPrint]) -> dict[str, Price]:
    result = {}
    for asset in _UNDERLYINGS:
        index = indexes.get(asset)
        if index_is_fresh(index, now=now):
            result[asset] = Price(index.price, index.ts, False, "index")
        else:
            known = _last_priced_index(asset)
            result[asset] = Price(known[1], known[0], True, "index") if known else Price(None, None, True, "none")
    return result


def _latest_index() -> dict[str, IndexPrint]:
    found = {}
    for asset in _UNDERLYINGS:
        latest = IndexPrint.objects.filter(underlying=asset).order_by("-ts").first()
        if latest is not None:
            found[asset] = latest
    return found


def _last_priced_index(asset: str):
    return (
        IndexPrint.objects.filter(underlying=asset, price__isnull=False)
        .order_by("-ts")
        .values_list("ts", "price")
        .first()
    )


def _parse_time(text) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


_PAST = timedelta(minutes=5)  # a price this much in the past no longer changes


def price_at(*, asset: str, at: datetime) -> Decimal | None:
    """``history.price_at``, kept in the cache for moments in the past (every request asks for
    the day's and the session's start)."""
    return _prices_at({asset}, at).get(asset)


def _prices_at(assets, at: datetime) -> dict[str, Decimal]:
    """The price of each of ``assets`` at ``at`` (those that have one), in one cache read."""
    found = {asset: ONE for asset in assets if asset == core.CASH}
    wanted = [asset for asset in assets if asset != core.CASH]
    if not wanted:
        return found
    keep = at < timezone.now() - _PAST
    keys = {asset: f"portfolio:price_at:{asset}:{at.timestamp():.6f}" for asset in wanted}
    cached = cache.get_many(list(keys.values())) if keep else {}
    for asset in wanted:
        price = cached.get(keys[asset])
        if price is None:
            price = history.price_at(asset=asset, at=at)
            # none is not kept: the asset's first price, when it comes, answers for before it
            if keep and price is not None:
                cache.set(keys[asset], price, 2 * 24 * 3600)
        if price is not None:
            found[asset] = price
    return found


# --- the replayed book ----------------------------------------------------------------------------------------


def book_of(*, user_id: int, method: str) -> core.Book:
    """The trader's whole replayed book (open lots and every disposal) by ``method``, up to
    date with the ledger; from the cache, extended with what is new (``books``)."""
    check_method(method)
    return books.book_of(user_id, method, now=timezone.now())


# --- the valuation --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetValue:
    asset: str
    quantity: Decimal  # the ledger balance: available + held
    available: Decimal
    held: Decimal
    price_usdt: Decimal | None
    price_at: datetime | None
    price_source: str
    value_usdt: Decimal | None
    weight: Decimal | None
    cost_basis_usdt: Decimal
    unrealized_pnl_usdt: Decimal | None
    realized_pnl_usdt: Decimal
    stale: bool


@dataclass(frozen=True)
class OptionValue:
    series: str
    underlying: str
    option_type: str
    strike: Decimal
    expiry: datetime
    contracts: Decimal
    mark_price_usdt: Decimal | None
    value_usdt: Decimal | None
    cost_usdt: Decimal
    unrealized_pnl_usdt: Decimal | None
    realized_pnl_usdt: Decimal
    session_pnl_usdt: Decimal | None
    stale: bool


@dataclass(frozen=True)
class OptionsValue:
    value_usdt: Decimal
    weight: Decimal | None
    unrealized_pnl_usdt: Decimal
    realized_pnl_usdt: Decimal
    session_start: datetime
    session_pnl_usdt: Decimal
    stale: bool
    positions: list[OptionValue]


@dataclass(frozen=True)
class Valuation:
    valued_at: datetime
    method: str
    total_usdt: Decimal
    day_start: datetime
    value_at_day_start_usdt: Decimal
    net_flows_today_usdt: Decimal
    pnl_today_usdt: Decimal
    net_invested_usdt: Decimal
    realized_pnl_usdt: Decimal
    unrealized_pnl_usdt: Decimal
    stale: bool
    assets: list[AssetValue]
    options: OptionsValue


def portfolio_of(*, user, method: str, now: datetime | None = None) -> Valuation:
    """The trader's portfolio now: each asset's ledger balance (available + held) at its live
    price, cost basis and PnL by ``method``; option positions at mark; today's PnL."""
    check_method(method)
    now = now or timezone.now()
    head, facts = books.head_of(user.pk, method, now=now)
    indexes = _latest_index()
    prices = _spot_prices(now, indexes)
    day_start = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    options = _options_now(head=head, now=now, indexes=_index_prices(now, indexes))

    lines = []
    for asset in ASSETS:
        quantity = facts.balance(asset)
        held = facts.held.get(asset, ZERO)
        price = prices[asset]
        value = core.worth(quantity, price.price) if price.price is not None else None
        _, cost, realized = head.holdings.get(asset, (ZERO, ZERO, ZERO))
        lines.append(
            dict(
                asset=asset,
                quantity=quantity,
                available=quantity - held,
                held=held,
                price_usdt=price.price,
                price_at=price.at,
                price_source=price.source,
                value_usdt=value,
                cost_basis_usdt=cost,
                unrealized_pnl_usdt=None if value is None else value - cost,
                realized_pnl_usdt=realized,
                stale=price.stale,
            )
        )
    total = sum((line["value_usdt"] for line in lines if line["value_usdt"] is not None), ZERO) + options.value_usdt
    assets = [AssetValue(weight=_weight(line["value_usdt"], total), **line) for line in lines]
    options = replace(options, weight=_weight(options.value_usdt, total))

    start_value, start_stale = _value_at_day_start(head, day_start)
    _, flows = head.moved_since(day_start.date())
    realized = sum((h[2] for h in head.holdings.values()), ZERO)
    unrealized = sum((a.unrealized_pnl_usdt for a in assets if a.unrealized_pnl_usdt is not None), ZERO)
    return Valuation(
        valued_at=now,
        method=method,
        total_usdt=total,
        day_start=day_start,
        value_at_day_start_usdt=start_value,
        net_flows_today_usdt=flows,
        pnl_today_usdt=total - start_value - flows,
        net_invested_usdt=head.net_invested,
        realized_pnl_usdt=realized,
        unrealized_pnl_usdt=unrealized + options.unrealized_pnl_usdt,
        stale=any(a.stale for a in assets) or options.stale or start_stale,
        assets=assets,
        options=options,
    )


def _weight(value: Decimal | None, total: Decimal) -> Decimal | None:
    if value is None:
        return None
    if not total:
        return ZERO
    return (value / total).quantize(WEIGHT_STEP, rounding=ROUND_HALF_EVEN)


# --- options -------------------------------------------------------------------------------------------------


def _instruments(symbols) -> dict[str, Instrument]:
    """Option series by symbol."""
    if not symbols:
        return {}
    return {i.symbol: i for i in Instrument.objects.filter(kind=InstrumentKind.OPTION, symbol__in=list(symbols))}


def _mark(instrument: Instrument, *, at: datetime, index: Decimal) -> Decimal:
    """USDT per contract: the chain's mark, or the intrinsic value once expired."""
    if at >= instrument.expiry:
        gap = index - instrument.strike if instrument.option_type == "C" else instrument.strike - index
        return max(gap, ZERO).quantize(OPTION_MARK_STEP)
    return series_price(instrument=instrument, now=at, index=index).mark_usdt


def _options_now(*, head: books.Head, now: datetime, indexes: dict[str, Price]) -> OptionsValue:
    """The option positions at mark, with their PnL by the book's method and since the
    session started (value now − value at the start + what was received − what was paid)."""
    start = books.session_start(now)
    activity = head.sessions.get(start, {})
    held = {asset: h for asset, h in head.holdings.items() if asset not in ASSETS}
    shown = {series for series, h in held.items() if h[0] > 0} | set(activity)
    instruments = _instruments(shown) if shown else {}
    start_indexes = _prices_at({i.base for i in instruments.values()}, start) if shown else {}
    positions, stale = [], False
    for series in sorted(instruments, key=lambda symbol: (instruments[symbol].expiry, symbol)):
        instrument = instruments[series]
        contracts, cost, realized = held.get(series, (ZERO, ZERO, ZERO))
        index = indexes.get(instrument.base)
        mark = value = unrealized = session = None
        if index is not None and index.price is not None:
            mark = _mark(instrument, at=now, index=index.price)
            value = core.worth(mark, contracts)
            unrealized = value - cost
            bought, sold, paid, received = activity.get(series, (ZERO, ZERO, ZERO, ZERO))
            held_at_start = contracts - bought + sold
            start_index = start_indexes.get(instrument.base)
            if not held_at_start:
                session = value - paid + received
            elif start_index is not None:
                start_value = core.worth(_mark(instrument, at=start, index=start_index), held_at_start)
                session = value - start_value + received - paid
        position_stale = index is None or index.stale or session is None
        stale = stale or position_stale
        positions.append(
            OptionValue(
                series=series,
                underlying=instrument.base,
                option_type=instrument.option_type,
                strike=instrument.strike,
                expiry=instrument.expiry,
                contracts=contracts,
                mark_price_usdt=mark,
                value_usdt=value,
                cost_usdt=cost,
                unrealized_pnl_usdt=unrealized,
                realized_pnl_usdt=realized,
                session_pnl_usdt=session,
                stale=position_stale,
            )
        )
    return OptionsValue(
        value_usdt=sum((p.value_usdt for p in positions if p.value_usdt is not None), ZERO),
        weight=None,
        unrealized_pnl_usdt=sum((p.unrealized_pnl_usdt for p in positions if p.unrealized_pnl_usdt is not None), ZERO),
        realized_pnl_usdt=sum((h[2] for h in held.values()), ZERO),
        session_start=start,
        session_pnl_usdt=sum((p.session_pnl_usdt for p in positions if p.session_pnl_usdt is not None), ZERO),
        stale=stale,
        positions=positions,
    )


# --- the value at the day's start -------------------------------------------------------------------------


def _value_at_day_start(head: books.Head, day_start: datetime) -> tuple[Decimal, bool]:
    """The portfolio at 00:00 UTC: what was held then (what is held now less what moved
    since) at the prices then, options at their mark then. Returns (value, whether a price
    was missing)."""
    moved, _ = head.moved_since(day_start.date())
    then = {
        asset: quantity - moved.get(asset, ZERO)
        for asset, (quantity, _, _) in head.holdings.items()
        if quantity - moved.get(asset, ZERO)
    }
    series = _instruments([asset for asset in then if asset not in ASSETS])
    prices = _prices_at({a for a in then if a in ASSETS} | {i.base for i in series.values()}, day_start)
    value, stale = ZERO, False
    for asset, quantity in then.items():
        if asset in ASSETS:
            price = prices.get(asset)
        else:
            instrument = series.get(asset)
            index = prices.get(instrument.base) if instrument is not None else None
            price = _mark(instrument, at=day_start, index=index) if index is not None else None
        if price is None:
            stale = True
            continue
        value += core.worth(quantity, price)
    return value, stale


# --- lots and realized PnL ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenLots:
    asset: str
    method: str
    quantity: Decimal
    cost_usdt: Decimal
    lots: list[core.Lot]


def check_lot_asset(asset) -> str:
    """A spot asset (in any case) or a listed option series; else ``unknown_asset``."""
    text = asset.strip().upper() if isinstance(asset, str) else ""
    if not text:
        raise ValidationFailed("asset is required.", fields={"asset": ["This field is required."]})
    if text in ASSETS:
        return text
    if text and len(text) <= 40 and Instrument.objects.filter(kind=InstrumentKind.OPTION, symbol=text).exists():
        return text
    return check_asset(text)  # refuses it, naming the field


def lots_of(*, user, asset: str, method: str) -> OpenLots:
    """The open lots of ``asset`` by ``method``: FIFO's lots as acquired (what is left of
    each), or one pooled lot at the average cost. Costs include the fees paid."""
    check_method(method)
    asset = check_lot_asset(asset)
    book = books.book_of(user.pk, method, now=timezone.now(), disposals=False)
    held = book.holdings.get(asset)
    quantity, cost = (held.quantity, held.cost) if held is not None else (ZERO, ZERO)
    return OpenLots(asset, method, quantity, cost, book.open_lots(asset))


@dataclass(frozen=True)
class RealizedPnl:
    start: datetime
    end: datetime
    method: str
    total_usdt: Decimal
    by_asset: dict[str, Decimal]
    disposals: list[core.Disposal]


def check_period(start: datetime | None, end: datetime | None, *, now: datetime | None = None):
    """[start, end): end defaults to now, start to the start of the UTC year end falls in
    (of the year before, for an end at a new year's midnight: the whole year). Refused when
    reversed, empty, or longer than five years."""
    now = now or timezone.now()
    end = end or now
    start = start or datetime((end.astimezone(UTC) - timedelta(microseconds=1)).year, 1, 1, tzinfo=UTC)
    if start >= end:
        raise ValidationFailed("start must be before end.", fields={"end": ["Must be after start."]})
    if end - start > MAX_PNL_RANGE:
        raise ValidationFailed(
            "The period is longer than five years.", fields={"start": ["At most five years before end."]}
        )
    return start, end


def pnl_of(*, user, start: datetime | None, end: datetime | None, method: str) -> RealizedPnl:
    """Realized PnL of the disposals in [start, end) by ``method``: per disposal (what was
    sold, withdrawn or closed, its proceeds net of fees and the cost of the lots it used),
    per asset and in total."""
    check_method(method)
    start, end = check_period(start, end)
    book = book_of(user_id=user.pk, method=method)
    disposals = [d for d in book.disposals if start <= d.at < end]
    by_asset: dict[str, Decimal] = defaultdict(Decimal)
    for disposal in disposals:
        by_asset[disposal.asset] += disposal.pnl_usdt
    return RealizedPnl(
        start=start,
        end=end,
        method=method,
        total_usdt=sum(by_asset.values(), ZERO),
        by_asset=dict(by_asset),
        disposals=disposals,
    )
