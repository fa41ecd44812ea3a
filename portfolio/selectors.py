"""Portfolio reads: live prices, the valuation (``GET /portfolio``), open lots and realized PnL.

The lots come from replaying the trader's history (``history``, ``core``). The replayed
book is kept in the cache per trader and method and extended with only what happened since:
it remembers the last ledger transfer it booked (created_at, id) and the last option order
and exercise, and the sums of the transfers it booked per account. A request first reads
the trader's account counters (every posted transfer adds to them) and option counts; when
they equal what the cached book was checked against, nothing happened and the book is used
as it is. Otherwise the transfers after the remembered one are booked, and the sums must then
equal the counters read after them: a transfer that committed late with an earlier time (two
engines' batches for one trader, say) shows as a difference, and the book is replayed from
the start. So the book always equals a replay of the whole history.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone

from ledger.models import AccountKind, LedgerAccount, Transfer, TransferKind
from marketdata.models import IndexPrint, Instrument, InstrumentKind
from marketdata.options import series_price
from marketdata.selectors import index_is_fresh, spot_book_key
from orders.options.models import OptionExercise, OptionOrder, OptionSide
from trading.errors import ValidationFailed
from trading.money import ASSETS, check_asset

from . import core, history

BOOK_VERSION = 1
BOOK_CACHE_SECONDS = 7 * 24 * 3600
MAX_PNL_RANGE = timedelta(days=5 * 366)
SESSION_HOUR = 8  # options expire, and their trading day turns, at 08:00 UTC
WEIGHT_STEP = Decimal("0.000001")
OPTION_MARK_STEP = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)


def book_cache_enabled() -> bool:
    """Off only to measure what the cache saves (bench/portfolio.py)."""
    return getattr(settings, "PORTFOLIO_BOOK_CACHE", True)


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


def price_at(*, asset: str, at: datetime) -> Decimal | None:
    """``history.price_at``, kept in the cache for times well in the past (day and session
    starts are asked for by every request)."""
    if asset == core.CASH:
        return ONE
    if at > timezone.now() - timedelta(minutes=5):
        return history.price_at(asset=asset, at=at)
    key = f"portfolio:price_at:{asset}:{at.timestamp():.6f}"
    found = cache.get(key)
    if found is None:
        found = history.price_at(asset=asset, at=at)
        if found is not None:
            cache.set(key, found, 2 * 24 * 3600)
    return found


# --- the ledger's facts and the cached book -----------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    """What the ledger says of one trader now: their accounts' posted counters and holds,
    and how many option orders and exercises they have (count and last id of each)."""

    accounts: dict[int, str]
    counters: dict[int, tuple[Decimal, Decimal]]  # account id -> (debits_posted, credits_posted)
    held: dict[str, Decimal]
    options: tuple[int, int, int, int]

    @property
    def fingerprint(self) -> tuple:
        return (tuple(sorted(self.counters.items())), self.options)

    def balance(self, asset: str) -> Decimal:
        for pk, account_asset in self.accounts.items():
            if account_asset == asset:
                debits, credits = self.counters[pk]
                return credits - debits
        return ZERO


def _option_counts_sql() -> str:
    orders, exercises = OptionOrder._meta.db_table, OptionExercise._meta.db_table
    return (
        f"SELECT (SELECT COUNT(*) FROM {orders} WHERE user_id = %s), "
        f"(SELECT COALESCE(MAX(id), 0) FROM {orders} WHERE user_id = %s), "
        f"(SELECT COUNT(*) FROM {exercises} WHERE user_id = %s), "
        f"(SELECT COALESCE(MAX(id), 0) FROM {exercises} WHERE user_id = %s)"
    )


def _facts(user_id: int) -> _Facts:
    accounts, counters, held = {}, {}, {}
    for pk, asset, debits, credits, pending in LedgerAccount.objects.filter(
        kind=AccountKind.USER, user_id=user_id
    ).values_list("pk", "asset", "debits_posted", "credits_posted", "debits_pending"):
        accounts[pk], counters[pk], held[asset] = asset, (debits, credits), pending
    with connection.cursor() as cursor:
        cursor.execute(_option_counts_sql(), [user_id] * 4)
        options = tuple(int(value) for value in cursor.fetchone())
    return _Facts(accounts, counters, held, options)


@dataclass
class _State:
    """A replayed book and where its history stops."""

    method: str
    book: core.Book
    sums: dict[int, list[Decimal]] = field(default_factory=dict)  # account id -> [debits, credits] booked
    cursor: tuple[datetime, str] | None = None  # the last transfer booked
    orders: int = 0  # option orders booked, and the last one's id
    last_order: int = 0
    exercises: int = 0
    last_exercise: int = 0
    fingerprint: tuple | None = None  # the facts it was found equal to
    version: int = BOOK_VERSION

    def advance(self, *, user_id: int, accounts: dict[int, str]) -> None:
        """Book what happened after the cursor. Raises ``core.OutOfOrder`` when something
        older than what is booked turns up (then only a replay will do)."""
        rows = history.transfers_of(accounts=accounts, after=self.cursor)
        events = history.events_from_transfers(rows, accounts=accounts, user_id=user_id)
        options = history.option_events(user_id=user_id, after_order=self.last_order, after_exercise=self.last_exercise)
        self.book.extend(events + options)
        for _, _, _, amount, debit, credit, _ in rows:
            if debit in accounts:
                self.sums.setdefault(debit, [ZERO, ZERO])[0] += amount
            if credit in accounts:
                self.sums.setdefault(credit, [ZERO, ZERO])[1] += amount
        if rows:
            self.cursor = (rows[-1][6], rows[-1][0])
        for event in options:
            kind, pk = event.reference.split(":")
            if kind == "option_order":
                self.orders, self.last_order = self.orders + 1, max(self.last_order, int(pk))
            else:
                self.exercises, self.last_exercise = self.exercises + 1, max(self.last_exercise, int(pk))

    def matches(self, facts: _Facts) -> bool:
        """Everything the counters count is booked (the transfers were read before them)."""
        for pk, (debits, credits) in facts.counters.items():
            booked = self.sums.get(pk, (ZERO, ZERO))
            if booked[0] != debits or booked[1] != credits:
                return False
        orders, _, exercises, _ = facts.options
        return self.orders == orders and self.exercises == exercises


@dataclass(frozen=True)
class _Head:
    """What the valuation needs of a book, small enough to read on every request."""

    fingerprint: tuple
    holdings: dict[str, tuple[Decimal, Decimal, Decimal]]  # asset -> (quantity, open cost, realized)
    net_invested: Decimal


def _keys(user_id: int, method: str) -> tuple[str, str]:
    base = f"portfolio:v{BOOK_VERSION}:{user_id}:{method}"
    return f"{base}:book", f"{base}:head"


def _head_of(state: _State, fingerprint) -> _Head:
    holdings = {asset: (h.quantity, h.cost, h.realized) for asset, h in state.book.holdings.items()}
    return _Head(fingerprint, holdings, state.book.net_invested)


def _current(user_id: int, method: str, facts: _Facts) -> tuple[_State, _Facts]:
    """The trader's book up to date with the ledger (and the facts it was checked against):
    from the cache as it is, extended, or replayed from the start."""
    book_key, head_key = _keys(user_id, method)
    state = cache.get(book_key) if book_cache_enabled() else None
    if state is not None and (state.version != BOOK_VERSION or state.method != method):
        state = None
    if state is not None and state.fingerprint == facts.fingerprint:
        return state, facts
    for attempt in range(3):
        if state is None or attempt == 2:
            state = _State(method, core.Book(method))
        try:
            state.advance(user_id=user_id, accounts=facts.accounts)
        except core.OutOfOrder:
            state = None
            continue
        facts = _facts(user_id)
        if state.matches(facts):
            state.fingerprint = facts.fingerprint
            if book_cache_enabled():
                cache.set_many({book_key: state, head_key: _head_of(state, facts.fingerprint)}, BOOK_CACHE_SECONDS)
            return state, facts
        # a difference: more happened meanwhile (book it next time round), or a transfer
        # committed late behind the cursor (the last round replays from the start)
    return state, facts  # still moving under us: this answer is not kept


def book_of(*, user_id: int, method: str) -> core.Book:
    """The trader's whole replayed book (lots and disposals) with ``method``, up to date."""
    check_method(method)
    state, _ = _current(user_id, method, _facts(user_id))
    return state.book


def _head(user_id: int, method: str) -> tuple[_Head, _Facts]:
    facts = _facts(user_id)
    if book_cache_enabled():
        head = cache.get(_keys(user_id, method)[1])
        if head is not None and head.fingerprint == facts.fingerprint:
            return head, facts
    state, facts = _current(user_id, method, facts)
    return _head_of(state, facts.fingerprint), facts


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
    head, facts = _head(user.pk, method)
    indexes = _latest_index()
    prices = _spot_prices(now, indexes)
    day_start = datetime.combine(now.date(), time(0), tzinfo=UTC)
    session_start = _session_start(now)
    options = _options_now(
        user_id=user.pk, head=head, facts=facts, now=now, session_start=session_start, indexes=indexes
    )

    lines = []
    for asset in ASSETS:
        quantity = facts.balance(asset)
        held = facts.held.get(asset, ZERO)
        price = prices[asset]
        value = core.usdt(quantity * price.price) if price.price is not None else None
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

    start_value, flows, start_stale = _value_at(user_id=user.pk, facts=facts, at=day_start)
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


def _session_start(now: datetime) -> datetime:
    start = datetime.combine(now.date(), time(SESSION_HOUR), tzinfo=UTC)
    return start if now >= start else start - timedelta(days=1)


# --- options -------------------------------------------------------------------------------------------------


@dataclass
class _SeriesActivity:
    """One series' option orders and exercises since some moment."""

    bought: Decimal = ZERO
    sold: Decimal = ZERO  # sold to close, or settled at expiry
    paid: Decimal = ZERO
    received: Decimal = ZERO


def _option_activity(user_id: int, since: datetime) -> dict[str, _SeriesActivity]:
    activity: dict[str, _SeriesActivity] = defaultdict(_SeriesActivity)
    for series, side, contracts, total in OptionOrder.objects.filter(
        user_id=user_id, created_at__gte=since
    ).values_list("series", "side", "contracts", "total_usdt"):
        line = activity[series]
        if side == OptionSide.BUY:
            line.bought += contracts
            line.paid += total
        else:
            line.sold += contracts
            line.received += total
    for series, contracts, payout in OptionExercise.objects.filter(user_id=user_id, created_at__gte=since).values_list(
        "series", "contracts", "payout_usdt"
    ):
        activity[series].sold += contracts
        activity[series].received += payout
    return activity


def _mark(instrument: Instrument, *, at: datetime, index: Decimal) -> Decimal:
    """USDT per contract: the chain's mark, or the intrinsic value once expired."""
    if at >= instrument.expiry:
        gap = index - instrument.strike if instrument.option_type == "C" else instrument.strike - index
        return max(gap, ZERO).quantize(OPTION_MARK_STEP)
    return series_price(instrument=instrument, now=at, index=index).mark_usdt


def _options_now(*, user_id: int, head: _Head, facts: _Facts, now: datetime, session_start: datetime, indexes):
    """The option positions at mark, with their PnL by the book's method and since the
    session started (value now − value at the start + what was received − what was paid)."""
    open_series = {
        asset: quantity for asset, (quantity, _, _) in head.holdings.items() if asset not in ASSETS and quantity > 0
    }
    realized_all = sum((h[2] for asset, h in head.holdings.items() if asset not in ASSETS), ZERO)
    activity = _option_activity(user_id, session_start) if facts.options[0] else {}
    shown = set(open_series) | set(activity)
    instruments = (
        {i.symbol: i for i in Instrument.objects.filter(kind=InstrumentKind.OPTION, symbol__in=shown)} if shown else {}
    )
    indexes = _index_prices(now, indexes) if shown else {}
    positions, stale = [], False
    for series in sorted(shown, key=lambda s: (instruments[s].expiry, s) if s in instruments else (now, s)):
        instrument = instruments.get(series)
        if instrument is None:
            continue
        contracts, cost, realized = head.holdings.get(series, (ZERO, ZERO, ZERO))
        index = indexes.get(instrument.base)
        mark = value = unrealized = session = None
        if index is not None and index.price is not None:
            mark = _mark(instrument, at=now, index=index.price)
            value = core.usdt(mark * contracts)
            unrealized = value - cost
        line = activity.get(series, _SeriesActivity())
        held_at_start = contracts - line.bought + line.sold
        if value is not None:
            start_value = ZERO
            if held_at_start:
                start_index = price_at(asset=instrument.base, at=session_start)
                start_value = (
                    core.usdt(_mark(instrument, at=session_start, index=start_index) * held_at_start)
                    if start_index is not None
                    else None
                )
            if start_value is not None:
                session = value - start_value + line.received - line.paid
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
        realized_pnl_usdt=realized_all,
        session_start=session_start,
        session_pnl_usdt=sum((p.session_pnl_usdt for p in positions if p.session_pnl_usdt is not None), ZERO),
        stale=stale,
        positions=positions,
    )


# --- the value at a past moment (the day's start) ----------------------------------------------------------


def _value_at(*, user_id: int, facts: _Facts, at: datetime) -> tuple[Decimal, Decimal, bool]:
    """The portfolio's value at ``at`` (balances then at the prices then, options at their
    mark then) and the money brought in less taken out since, each valued when it moved.
    Returns (value, net flows, whether a price was missing)."""
    ids = list(facts.accounts)
    moved: dict[str, Decimal] = defaultdict(Decimal)
    flows, stale = ZERO, False
    if ids:
        since = Transfer.objects.filter(
            Q(debit_account_id__in=ids) | Q(credit_account_id__in=ids),
            kind__in=(TransferKind.POSTED, TransferKind.POST_PENDING),
            created_at__gte=at,
        )
        for asset, came, went in (
            since.values("asset")
            .annotate(
                came=Sum("amount", filter=Q(credit_account_id__in=ids)),
                went=Sum("amount", filter=Q(debit_account_id__in=ids)),
            )
            .values_list("asset", "came", "went")
        ):
            moved[asset] += (came or ZERO) - (went or ZERO)
        flow_rows = since.exclude(code__in=history.NOT_FLOW_CODES).values_list(
            "asset", "amount", "credit_account_id", "created_at"
        )
        for asset, amount, credit, created_at in flow_rows:
            price = price_at(asset=asset, at=created_at)
            if price is None:
                stale = True
                continue
            value = core.usdt(amount * price)
            flows += value if credit in facts.accounts else -value
    value = ZERO
    for asset in ASSETS:
        quantity = facts.balance(asset) - moved.get(asset, ZERO)
        if not quantity:
            continue
        price = price_at(asset=asset, at=at)
        if price is None:
            stale = True
            continue
        value += core.usdt(quantity * price)
    if facts.options[0]:
        option_value, option_stale = _options_value_at(user_id=user_id, at=at)
        value += option_value
        stale = stale or option_stale
    return value, flows, stale


def _options_value_at(*, user_id: int, at: datetime) -> tuple[Decimal, bool]:
    held: dict[str, Decimal] = defaultdict(Decimal)
    for series, side, contracts in OptionOrder.objects.filter(user_id=user_id, created_at__lt=at).values_list(
        "series", "side", "contracts"
    ):
        held[series] += contracts if side == OptionSide.BUY else -contracts
    for series, contracts in OptionExercise.objects.filter(user_id=user_id, created_at__lt=at).values_list(
        "series", "contracts"
    ):
        held[series] -= contracts
    open_series = {series: contracts for series, contracts in held.items() if contracts > 0}
    if not open_series:
        return ZERO, False
    value, stale = ZERO, False
    for instrument in Instrument.objects.filter(kind=InstrumentKind.OPTION, symbol__in=open_series):
        index = price_at(asset=instrument.base, at=at)
        if index is None:
            stale = True
            continue
        value += core.usdt(_mark(instrument, at=at, index=index) * open_series[instrument.symbol])
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
    book = book_of(user_id=user.pk, method=method)
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
    """[start, end): end defaults to now, start to the start of end's year (UTC). Refused
    when reversed, empty, or longer than five years."""
    now = now or timezone.now()
    end = end or now
    start = start or datetime(end.year, 1, 1, tzinfo=UTC)
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
