"""Portfolio digests: a daily and a weekly summary told to every trader with holdings or
activity in the period (a ``digest`` notification, by email too unless they switched it off).

For each trader and period (a closed UTC day, or a whole ISO week, Monday to Sunday):

* **value at the start and at the end**: the daily snapshots (``snapshots``) at the close
  of the day before the period and of its last day, as ``GET /portfolio/performance``
  answers them; a trader without a snapshot at the start started from nothing. The
  period's **change** is end − start.
* **net deposits**: deposits minus withdrawals of the period (the snapshots' flows).
* **PnL of the period**: change − net deposits. **Realized**: the disposals of the period
  with FIFO lots, as ``GET /portfolio/pnl?start=&end=&method=fifo`` answers; **unrealized**:
  the open positions' value over their FIFO cost at the end less the same at the start, as
  the statements of the two moments say (``GET /statements``, ``unrealized_pnl_usdt``).
  Realized + unrealized is the PnL up to how the two value a deposit (the snapshots at
  the last index candle before it, the lots at the index print or candle then).
* **fills and volume**: the trader's fills in the period (on our book, RFQ blocks, smart
  orders' fills at outside venues) and their USDT value, as the statement of the period
  lists its trades.

Every figure is read for all traders at once: one query per figure (or per chunk of
traders for the realized PnL, whose FIFO lots are replayed in Python from their history
read in one query), never a query per trader. Each message's key,
``digest:daily:YYYY-MM-DD`` or ``digest:weekly:YYYY-Www``, makes a second run of the same
period tell nobody again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from accounts.models import User
from ledger.models import AccountKind, LedgerAccount, Transfer, TransferKind
from marketdata.models import Candle, CandleSource, IndexPrint, Instrument, InstrumentKind
from notifications.services import Message, notify_many
from orders.models import SpotOrder, SpotTrade
from trading.errors import ValidationFailed
from trading.formatting import decimal_string, utc_string
from trading.money import ASSETS, fmt
from trading.pgarrays import unnest_arrays

from . import core, history, selectors, snapshots, statements
from .models import DailySnapshot

DAILY, WEEKLY = "daily", "weekly"
PERIODS = (DAILY, WEEKLY)
KIND = "digest"
ZERO = Decimal(0)
CENT = Decimal("0.01")
CHUNK = 1000  # traders per statement of the history reads, and per batch of messages


@dataclass(frozen=True)
class Period:
    kind: str
    first: date  # the period's first and last UTC days
    last: date

    @property
    def label(self) -> str:
        if self.kind == DAILY:
            return self.first.isoformat()
        year, week, _ = self.first.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def start(self) -> datetime:
        return snapshots.day_start(self.first)

    @property
    def end(self) -> datetime:
        return snapshots.day_end(self.last)

    @property
    def base_day(self) -> date:
        """The day whose close is the period's start."""
        return self.first - timedelta(days=1)

    @property
    def dedupe_key(self) -> str:
        return f"digest:{self.kind}:{self.label}"


def period_of(kind: str, day: date | None = None, *, now: datetime | None = None) -> Period:
    """The daily period of ``day`` (default: the last closed day), or the ISO week that holds
    it (default: the last whole week). A period that has not ended is refused."""
    if kind not in PERIODS:
        raise ValidationFailed(f"Unknown period {kind!r}.", fields={"period": [f"One of {', '.join(PERIODS)}."]})
    closed = snapshots.last_closed_day(now)
    if day is None:
        day = closed if kind == DAILY or closed.isoweekday() == 7 else closed - timedelta(days=closed.isoweekday())
    if kind == DAILY:
        period = Period(kind, day, day)
    else:
        monday = day - timedelta(days=day.isoweekday() - 1)
        period = Period(kind, monday, monday + timedelta(days=6))
    if period.last > closed:
        raise ValidationFailed(
            f"The {kind} period {period.label} has not ended yet.",
            fields={"date": [f"The last closed day is {closed.isoformat()}."]},
        )
    return period


@dataclass(frozen=True)
class Digest:
    user_id: int
    start_value_usdt: Decimal
    end_value_usdt: Decimal
    net_flows_usdt: Decimal
    realized_pnl_usdt: Decimal
    unrealized_at_start_usdt: Decimal
    unrealized_at_end_usdt: Decimal
    fills: int
    volume_usdt: Decimal

    @property
    def change_usdt(self) -> Decimal:
        return self.end_value_usdt - self.start_value_usdt

    @property
    def pnl_usdt(self) -> Decimal:
        return self.change_usdt - self.net_flows_usdt

    @property
    def unrealized_pnl_usdt(self) -> Decimal:
        """The change of the open positions' value over their cost."""
        return self.unrealized_at_end_usdt - self.unrealized_at_start_usdt


# --- the figures, for every trader at once ----------------------------------------------------------------


def _values(period: Period) -> tuple[dict[int, Decimal], dict[int, Decimal], dict[int, Decimal]]:
    """Per trader: the value at the start, at the end, and the period's flows."""
    start, end, flows = {}, {}, defaultdict(Decimal)
    rows = DailySnapshot.objects.filter(date__gte=period.base_day, date__lte=period.last).values_list(
        "user_id", "date", "value_usdt", "net_flows_usdt"
    )
    for user_id, day, value, flow in rows:
        if day == period.base_day:
            start[user_id] = value
            continue
        if day == period.last:
            end[user_id] = value
        flows[user_id] += flow
    return start, end, flows


def _fills(period: Period) -> dict[int, tuple[int, Decimal]]:
    """Per trader: their fills (each side of a trade on our book, each RFQ block, each
    smart-routed child filled at a venue) in the period and their value in USDT."""
    found: dict[int, list] = defaultdict(lambda: [0, ZERO])
    trades = SpotTrade.objects.filter(created_at__gte=period.start, created_at__lt=period.end)
    for side in ("maker_user", "taker_user"):
        for user_id, count, volume in (
            trades.values(side).annotate(n=Count("id"), v=Sum("quote_amount")).values_list(side, "n", "v")
        ):
            found[user_id][0] += count
            found[user_id][1] += volume or ZERO
    # An RFQ block is two legs between the trader and the market maker; its USDT leg is its value.
    blocks = Transfer.objects.filter(
        code="rfq_trade",
        asset=core.CASH,
        kind__in=(TransferKind.POSTED, TransferKind.POST_PENDING),
        created_at__gte=period.start,
        created_at__lt=period.end,
    )
    for side in ("debit_account__user_id", "credit_account__user_id"):
        account = side.split("__")[0]
        for user_id, count, volume in (
            blocks.filter(**{f"{account}__kind": AccountKind.USER})
            .values(side)
            .annotate(n=Count("id"), v=Sum("amount"))
            .values_list(side, "n", "v")
        ):
            found[user_id][0] += count
            found[user_id][1] += volume or ZERO
    # A smart order's child filled at an outside venue: its ``post`` leg is what the trader
    # paid (USDT for a buy: its value), a sell's value is the USDT received and the venue's fee.
    legs: dict[str, dict[str, tuple]] = defaultdict(dict)
    for pk, asset, amount, user_id, kind, created_at in Transfer.objects.filter(
        code__in=("venue_fill", "venue_fee"),
        pk__startswith="venue:",
        created_at__gte=period.start - history._LEGS_SPREAD,
        created_at__lt=period.end + history._LEGS_SPREAD,
    ).values_list("pk", "asset", "amount", "debit_account__user_id", "debit_account__kind", "created_at"):
        child, leg = pk.rsplit(":", 1)
        legs[child][leg] = (asset, amount, user_id if kind == AccountKind.USER else None, created_at)
    for child in legs.values():
        post = child.get("post")
        if post is None or post[2] is None or not period.start <= post[3] < period.end:
            continue
        if post[0] == core.CASH:
            volume = post[1]
        else:
            volume = sum((child[leg][1] for leg in ("recv", "fee") if leg in child), ZERO)
        found[post[2]][0] += 1
        found[post[2]][1] += volume
    return {user_id: (count, volume) for user_id, (count, volume) in found.items()}


def _prices_at(pairs: set[tuple[str, datetime]]) -> dict[tuple[str, datetime], Decimal | None]:
    """``history.price_at`` of each (asset, moment), in one statement on PostgreSQL."""
    pairs = {(asset, at) for asset, at in pairs if asset != core.CASH}
    if not pairs:
        return {}
    if connection.vendor != "postgresql":
        return {(asset, at): history.price_at(asset=asset, at=at) for asset, at in pairs}
    ordered = sorted(pairs)
    arrays, params = unnest_arrays([[a for a, _ in ordered], [t for _, t in ordered]], ["text", "timestamptz"])
    prints, candles = IndexPrint._meta.db_table, Candle._meta.db_table
    good = "p.underlying = q.asset AND p.stale = false AND p.price IS NOT NULL"
    bars = f"c.symbol = q.asset || '-USDT' AND c.source = '{CandleSource.INDEX}' AND c.interval = '1m'"
    # As history.price_at: the later of the last print at or before the moment and the
    # minute's candle (its close once the minute is over, else its open), a print winning a
    # tie; failing both, the earlier of the first print and the first candle after it.
    sql = f"""
    SELECT q.asset, q.at,
      CASE
        WHEN pb.ts IS NOT NULL OR cb.open_time IS NOT NULL THEN
          CASE WHEN cb.open_time IS NULL THEN pb.price
               WHEN pb.ts IS NULL THEN cb.price
               WHEN pb.ts >= cb.at THEN pb.price ELSE cb.price END
        ELSE
          CASE WHEN ca.open_time IS NULL THEN pa.price
               WHEN pa.ts IS NULL THEN ca.open
               WHEN pa.ts <= ca.open_time THEN pa.price ELSE ca.open END
      END
    FROM unnest({arrays}) AS q(asset, at)
    LEFT JOIN LATERAL (SELECT p.ts, p.price FROM {prints} p WHERE {good} AND p.ts <= q.at
                       ORDER BY p.ts DESC LIMIT 1) pb ON true
    LEFT JOIN LATERAL (SELECT c.open_time,
                              CASE WHEN c.open_time + interval '1 minute' <= q.at
                                   THEN c.open_time + interval '1 minute' ELSE c.open_time END AS at,
                              CASE WHEN c.open_time + interval '1 minute' <= q.at THEN c.close ELSE c.open END AS price
                       FROM {candles} c WHERE {bars} AND c.open_time <= q.at
                       ORDER BY c.open_time DESC LIMIT 1) cb ON true
    LEFT JOIN LATERAL (SELECT p.ts, p.price FROM {prints} p WHERE {good} AND p.ts > q.at
                       ORDER BY p.ts LIMIT 1) pa ON true
    LEFT JOIN LATERAL (SELECT c.open_time, c.open FROM {candles} c WHERE {bars} AND c.open_time > q.at
                       ORDER BY c.open_time LIMIT 1) ca ON true"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(asset, at): price for asset, at, price in cursor.fetchall()}


class _Prices:
    """What the statements price open positions at, at a moment: each underlying's
    ``price_at``, each option series at its mark then; read once per asset and moment for
    every trader."""

    def __init__(self):
        self._prices: dict[tuple[str, datetime], Decimal | None] = {}
        self._series: dict[str, Instrument | None] = {}

    def underlying(self, asset: str, at: datetime) -> Decimal | None:
        if (asset, at) not in self._prices:
            self._prices[(asset, at)] = selectors.price_at(asset=asset, at=at)
        return self._prices[(asset, at)]

    def of(self, asset: str, at: datetime) -> Decimal | None:
        if asset in ASSETS:
            return self.underlying(asset, at)
        if asset not in self._series:
            self._series[asset] = Instrument.objects.filter(kind=InstrumentKind.OPTION, symbol=asset).first()
        instrument = self._series[asset]
        if instrument is None:
            return None
        index = self.underlying(instrument.base, at)
        if index is None:
            return None
        key = (asset, at)
        if key not in self._prices:
            self._prices[key] = statements._mark_at(instrument, at=at, index=index)
        return self._prices[key]

    def unrealized(self, book: core.Book, at: datetime) -> Decimal:
        """The open positions' value at ``at`` less their open cost (a position without a
        price then is left out, as the statement leaves it)."""
        total = ZERO
        for asset, held in book.holdings.items():
            if asset == core.CASH or not held.quantity:
                continue
            price = self.of(asset, at)
            if price is not None:
                total += core.worth(held.quantity, price) - held.cost
        return total


def _books(period: Period, user_ids: set[int]) -> dict[int, tuple[Decimal, Decimal, Decimal]]:
    """Per trader, from their FIFO lots: the realized PnL of the disposals in the period, and
    the unrealized PnL at its start and at its end. Each trader's history up to the period's
    end is replayed, read for a chunk of traders at a time."""
    found: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
    until = period.end + history._LEGS_SPREAD  # a trade stamped across the end is whole
    priced = _Prices()
    ids = sorted(user_ids)
    for offset in range(0, len(ids), CHUNK):
        chunk = ids[offset : offset + CHUNK]
        accounts: dict[int, tuple[int, str]] = {}
        owned: dict[int, dict[int, str]] = defaultdict(dict)
        for pk, user_id, asset in LedgerAccount.objects.filter(kind=AccountKind.USER, user_id__in=chunk).values_list(
            "pk", "user_id", "asset"
        ):
            accounts[pk] = (user_id, asset)
            owned[user_id][pk] = asset
        rows = list(
            Transfer.objects.filter(
                Q(debit_account_id__in=list(accounts)) | Q(credit_account_id__in=list(accounts)),
                kind__in=(TransferKind.POSTED, TransferKind.POST_PENDING),
                created_at__lte=until,
            )
            .order_by("created_at", "id")
            .values_list(*history._ROW_FIELDS)
        )
        per_user: dict[int, list] = defaultdict(list)
        for row in rows:
            owners = {accounts[a][0] for a in (row[4], row[5]) if a in accounts}
            for user_id in owners:
                per_user[user_id].append(row)
        # the spot orders of these traders that a smart order sent to our book
        smart = set(SpotOrder.objects.filter(user_id__in=chunk, parent__isnull=False).values_list("pk", flat=True))
        valued = {(row[2], row[6]) for row in rows if row[1] not in history.NOT_FLOW_CODES}
        prices = _prices_at(valued)
        options = history.option_events_of(user_ids=chunk, until=until)
        for user_id in chunk:
            events = history.events_from_transfers(
                per_user.get(user_id, []), accounts=owned[user_id], user_id=user_id, smart=smart, prices=prices
            )
            events += options.get(user_id, [])
            events.sort(key=lambda event: event.key)
            # as the statements cut a history: what happened up to and at the moment
            book = core.Book(core.FIFO).extend([e for e in events if e.at <= period.start])
            at_start = priced.unrealized(book, period.start)
            book.extend([e for e in events if period.start < e.at <= period.end])
            at_end = priced.unrealized(book, period.end)
            book.extend([e for e in events if e.at > period.end])
            realized = sum((d.pnl_usdt for d in book.disposals if period.start <= d.at < period.end), ZERO)
            found[user_id] = (realized, at_start, at_end)
    return found


def digests_of(period: Period) -> list[Digest]:
    """The digest of every trader with holdings or activity in the period."""
    start, end, flows = _values(period)
    fills = _fills(period)
    quiet = set(
        User.objects.filter(Q(is_active=False) | Q(email__in=settings.RISK_EXEMPT_EMAILS)).values_list("pk", flat=True)
    )
    traders = {
        user_id
        for user_id in set(start) | set(end) | set(flows) | set(fills)
        if user_id not in quiet
        and (start.get(user_id) or end.get(user_id) or flows.get(user_id) or fills.get(user_id, (0,))[0])
    }
    books = _books(period, traders)
    return [
        Digest(
            user_id=user_id,
            start_value_usdt=start.get(user_id, ZERO),
            end_value_usdt=end.get(user_id, ZERO),
            net_flows_usdt=flows.get(user_id, ZERO),
            realized_pnl_usdt=books[user_id][0],
            unrealized_at_start_usdt=books[user_id][1],
            unrealized_at_end_usdt=books[user_id][2],
            fills=fills.get(user_id, (0, ZERO))[0],
            volume_usdt=fills.get(user_id, (0, ZERO))[1],
        )
        for user_id in sorted(traders)
    ]


# --- the messages ------------------------------------------------------------------------------------------


def _usdt(value: Decimal) -> str:
    return fmt(core.CASH, core.usdt(value))


def _cents(value: Decimal) -> str:
    """A figure in the message's text: to the cent (``data`` keeps USDT's scale)."""
    return decimal_string(value, step=CENT)


def _signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + _cents(value)


def message_of(period: Period, digest: Digest) -> Message:
    what = f"{period.first:%a %d %b %Y}" if period.kind == DAILY else f"week {period.label}"
    change = digest.change_usdt
    percent = f" ({(change / digest.start_value_usdt * 100).quantize(CENT):+}%)" if digest.start_value_usdt > 0 else ""
    lines = [
        f"Value: {_cents(digest.start_value_usdt)} → {_cents(digest.end_value_usdt)} USDT, "
        f"{_signed(change)} USDT{percent}.",
    ]
    if digest.net_flows_usdt:
        lines.append(f"Net deposits: {_signed(digest.net_flows_usdt)} USDT.")
    lines.append(f"PnL: {_signed(digest.pnl_usdt)} USDT (the change less net deposits).")
    lines.append(
        f"Realized: {_signed(digest.realized_pnl_usdt)} USDT; unrealized: "
        f"{_signed(digest.unrealized_pnl_usdt)} USDT (the change in your open positions' gain over their cost)."
    )
    if digest.fills:
        fills = "1 fill" if digest.fills == 1 else f"{digest.fills} fills"
        lines.append(f"Trading: {fills}, {_cents(digest.volume_usdt)} USDT traded.")
    else:
        lines.append("Trading: no fills.")
    return Message(
        user_id=digest.user_id,
        kind=KIND,
        title=f"Your {period.kind} portfolio summary: {what}",
        body="\n".join(lines),
        dedupe_key=period.dedupe_key,
        data={
            "period": period.kind,
            "label": period.label,
            "start": utc_string(period.start),
            "end": utc_string(period.end),
            "start_value_usdt": _usdt(digest.start_value_usdt),
            "end_value_usdt": _usdt(digest.end_value_usdt),
            "change_usdt": _usdt(change),
            "net_flows_usdt": _usdt(digest.net_flows_usdt),
            "pnl_usdt": _usdt(digest.pnl_usdt),
            "realized_pnl_usdt": _usdt(digest.realized_pnl_usdt),
            "unrealized_pnl_usdt": _usdt(digest.unrealized_pnl_usdt),
            "fills": digest.fills,
            "volume_usdt": _usdt(digest.volume_usdt),
        },
    )


@dataclass
class DigestRun:
    period: Period
    traders: int
    told: int  # new messages (a rerun tells nobody again)
    seconds: float


def digests_send(*, kind: str, day: date | None = None, progress: Callable[[str], None] | None = None) -> DigestRun:
    """Tell every trader with holdings or activity their digest of the period (see
    ``period_of``), writing the snapshots it needs first if the nightly run has not.
    Idempotent: a trader told already is not told again."""
    started = time.perf_counter()
    period = period_of(kind, day)
    needed = [d for d in (period.base_day, period.last) if not DailySnapshot.objects.filter(date=d).exists()]
    if needed:
        snapshots.snapshots_write(days=needed, progress=progress)
    digests = digests_of(period)
    if progress:
        progress(f"{period.kind} {period.label}: {len(digests)} traders ({time.perf_counter() - started:.1f} s)")
    told = 0
    for offset in range(0, len(digests), CHUNK):
        batch = digests[offset : offset + CHUNK]
        with transaction.atomic(durable=True):
            told += len(notify_many([message_of(period, digest) for digest in batch]))
        if progress:
            progress(f"  {offset + len(batch)} of {len(digests)} written, {told} new")
    return DigestRun(period=period, traders=len(digests), told=told, seconds=time.perf_counter() - started)


def period_day(text: str | None) -> date | None:
    """A ``--date`` as given (YYYY-MM-DD), or None."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("Expected a date as YYYY-MM-DD.", fields={"date": ["YYYY-MM-DD."]}) from None
