"""Daily snapshots: every trader's portfolio value at the close of each UTC day (00:00 UTC of
the next), and the deposits minus withdrawals of that day, written for all traders at once.

A day's rows come from one set-based statement, never from a loop over traders:

* **balances at the close**: each trader account's balance now (``credits_posted -
  debits_posted``, holds included) minus the posted transfers booked after the close. The
  later transfers are grouped per account and day, and a running total from the newest day
  back gives, for every past close, what moved after it; so a range of days (a backfill)
  costs one pass over the transfers since its first close, and yesterday alone only the
  transfers since midnight.
* **option positions at the close**: the contracts bought minus sold before the close, for
  the series that had not expired yet, at the chain's mark for that moment (the smile's vol,
  Black-76 on the index at the close); the few series alive are priced here, in Python.
* **prices at the close**: the close of each spot pair's last one-minute index candle that
  opened before it (the index history the market data keeps; USDT is 1). A day for which
  an asset has no price at all is not written (and is reported), never valued at zero.
* **flows**: posted transfers between a trader account and the external world (deposits,
  faucet credits, withdrawals once sent), each valued in USDT at the index when it was
  booked (the close of the last one-minute candle that opened before it). Withdrawal fees
  and trading fees are not flows: they are costs, and returns show them.

PostgreSQL runs it as one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: idempotent per
trader and day, and two runs at once write each row once. The embedded mode's SQLite has no
exact decimal arithmetic (amounts are integer units there), so it reads the same quantities
with one query per part and multiplies in Python.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from ledger.models import AccountKind, LedgerAccount, Transfer, TransferKind
from marketdata.models import Candle, CandleSource, Instrument, InstrumentKind
from marketdata.options import series_price
from orders.options.models import OptionOrder, OptionSide
from portfolio import performance
from portfolio.models import DailySnapshot
from trading.errors import ValidationFailed
from trading.money import ASSETS
from trading.pgarrays import unnest_arrays

QUOTE = "USDT"
PRICED = tuple(asset for asset in ASSETS if asset != QUOTE)
SNAPSHOT_PLACES = Decimal("0.00000001")
# A write that began just before midnight may commit just after it: the day's snapshot waits
# this long past the close before it reads.
GRACE_SECONDS = 5.0
# Backfills go this many days per statement (each its own transaction, with a progress line).
CHUNK_DAYS = 31
# Five years back at most, as statements: what a first run backfills.
MAX_BACKFILL_DAYS = 5 * 366


def day_end(day: date) -> datetime:
    """The close of a UTC day: 00:00 UTC of the next one."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def last_closed_day(now: datetime | None = None) -> date:
    return ((now or timezone.now()).astimezone(UTC) - timedelta(days=1)).date()


def _units(value) -> Decimal:
    """A value plain SQL read from an amount column (integer units on SQLite)."""
    return LedgerAccount._meta.get_field("credits_posted").from_db(value, connection)


def _moment(value: datetime):
    """A time as a parameter of plain SQL: as the column stores it (SQLite keeps naive UTC
    text, and compares text)."""
    return value if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(value)


def price_at(*, asset: str, at: datetime) -> Decimal | None:
    """The USDT price of ``asset`` at ``at``: the close of the last one-minute index candle
    that opened before it (USDT is 1)."""
    if asset == QUOTE:
        return Decimal(1)
    return (
        Candle.objects.filter(symbol=f"{asset}-{QUOTE}", source=CandleSource.INDEX, interval="1m", open_time__lt=at)
        .order_by("-open_time")
        .values_list("close", flat=True)
        .first()
    )


def close_prices(days: Sequence[date]) -> dict[date, dict[str, Decimal]]:
    """Each day's closing price per asset; an asset without any candle before the close is
    left out of that day."""
    prices: dict[date, dict[str, Decimal]] = {}
    for day in days:
        found = {QUOTE: Decimal(1)}
        for asset in PRICED:
            price = price_at(asset=asset, at=day_end(day))
            if price is not None:
                found[asset] = price
        prices[day] = found
    return prices


def option_marks(days: Sequence[date], prices: dict[date, dict[str, Decimal]]) -> dict[tuple[date, int], Decimal]:
    """The mark (USDT per contract) at each day's close of every series someone had bought
    by then and that had not expired: priced as the chain prices it, on the index at the close."""
    if not days:
        return {}
    first_end, last_end = day_end(days[0]), day_end(days[-1])
    traded = (
        OptionOrder.objects.filter(created_at__lt=last_end)
        .values("instrument_id")
        .annotate(first=Min("created_at"))
        .values_list("instrument_id", "first")
    )
    first_order = dict(traded)
    series = Instrument.objects.filter(kind=InstrumentKind.OPTION, expiry__gt=first_end, pk__in=list(first_order))
    marks = {}
    for instrument in series:
        for day in days:
            close = day_end(day)
            index = prices[day].get(instrument.base)
            if first_order[instrument.pk] >= close or instrument.expiry <= close or index is None:
                continue
            marks[(day, instrument.pk)] = series_price(instrument=instrument, now=close, index=index).mark_usdt
    return marks


# --- the statement ------------------------------------------------------------------------------


def _day_of(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"({column} AT TIME ZONE 'UTC')::date"
    return f"date({column})"


def _days_cte(days: Sequence[date]) -> tuple[str, list]:
    """The CTE ``days(day, day_end)``, with its parameters."""
    if connection.vendor == "postgresql":
        placeholders, params = unnest_arrays([list(days), [day_end(d) for d in days]], ["date", "timestamptz"])
        return f"days AS (SELECT * FROM unnest({placeholders}) AS d(day, day_end))", params
    rows = ", ".join(["(%s, %s)"] * len(days))
    params = [value for d in days for value in (d.isoformat(), _moment(day_end(d)))]
    return f"days(day, day_end) AS (VALUES {rows})", params


_POSTED = f"('{TransferKind.POSTED}', '{TransferKind.POST_PENDING}')"
_ACCOUNT = LedgerAccount._meta.db_table
_TRANSFER = Transfer._meta.db_table
_OPTION_ORDER = OptionOrder._meta.db_table
_INSTRUMENT = Instrument._meta.db_table
_CANDLE = Candle._meta.db_table


def _parts_sql(days: Sequence[date]) -> tuple[str, list]:
    """The CTEs every variant shares: ``holdings(day, user_id, asset, quantity)``,
    ``options(day, user_id, instrument_id, contracts)`` and ``flows(day, user_id, asset,
    amount, price)`` (``price`` as ``price_at`` reads it, NULL for USDT or unknown)."""
    days_sql, params = _days_cte(days)
    first_end, first_start, last_end = day_end(days[0]), day_start(days[0]), day_end(days[-1])
    moved_day = _day_of("m.created_at")
    order_day = _day_of("o.created_at")
    flow_day = _day_of("f.created_at")
    sql = f"""
    WITH {days_sql},
    trader_accounts AS (
        SELECT id, user_id, asset, credits_posted - debits_posted AS balance, created_at
        FROM {_ACCOUNT} WHERE kind = '{AccountKind.USER}'
    ),
    moves AS (
        SELECT m.account_id, {moved_day} AS day, SUM(m.amount) AS amount
        FROM (
            SELECT credit_account_id AS account_id, amount, created_at FROM {_TRANSFER}
            WHERE kind IN {_POSTED} AND created_at >= %s
            UNION ALL
            SELECT debit_account_id AS account_id, -amount AS amount, created_at FROM {_TRANSFER}
            WHERE kind IN {_POSTED} AND created_at >= %s
        ) m
        GROUP BY m.account_id, {moved_day}
    ),
    later AS (
        SELECT account_id, day,
               LAG(day) OVER (PARTITION BY account_id ORDER BY day) AS previous_day,
               SUM(amount) OVER (PARTITION BY account_id ORDER BY day DESC ROWS UNBOUNDED PRECEDING) AS amount
        FROM moves
    ),
    holdings AS (
        SELECT d.day, a.user_id, a.asset, a.balance - COALESCE(l.amount, 0) AS quantity
        FROM days d
        JOIN trader_accounts a ON a.created_at < d.day_end
        LEFT JOIN later l
          ON l.account_id = a.id AND l.day > d.day AND (l.previous_day IS NULL OR l.previous_day <= d.day)
    ),
    option_moves AS (
        SELECT o.user_id, o.instrument_id, {order_day} AS day,
               SUM(CASE WHEN o.side = '{OptionSide.BUY}' THEN o.contracts ELSE -o.contracts END) AS contracts
        FROM {_OPTION_ORDER} o JOIN {_INSTRUMENT} i ON i.id = o.instrument_id
        WHERE i.expiry > %s AND o.created_at < %s
        GROUP BY o.user_id, o.instrument_id, {order_day}
    ),
    option_held AS (
        SELECT user_id, instrument_id, day,
               LEAD(day) OVER (PARTITION BY user_id, instrument_id ORDER BY day) AS next_day,
               SUM(contracts) OVER (PARTITION BY user_id, instrument_id ORDER BY day ROWS UNBOUNDED PRECEDING)
                   AS contracts
        FROM option_moves
    ),
    options AS (
        SELECT d.day, h.user_id, h.instrument_id, h.contracts
        FROM days d
        JOIN option_held h ON h.day <= d.day AND (h.next_day IS NULL OR d.day < h.next_day)
        JOIN {_INSTRUMENT} i ON i.id = h.instrument_id AND i.expiry > d.day_end
        WHERE h.contracts <> 0
    ),
    edge AS (
        SELECT t.credit_account_id AS account_id, t.amount, t.created_at
        FROM {_TRANSFER} t JOIN {_ACCOUNT} x ON x.id = t.debit_account_id AND x.kind = '{AccountKind.EXTERNAL}'
        WHERE t.kind IN {_POSTED} AND t.created_at >= %s AND t.created_at < %s
        UNION ALL
        SELECT t.debit_account_id AS account_id, -t.amount AS amount, t.created_at
        FROM {_TRANSFER} t JOIN {_ACCOUNT} x ON x.id = t.credit_account_id AND x.kind = '{AccountKind.EXTERNAL}'
        WHERE t.kind IN {_POSTED} AND t.created_at >= %s AND t.created_at < %s
    ),
    flows AS (
        SELECT {flow_day} AS day, a.user_id, a.asset, f.amount,
               (SELECT c.close FROM {_CANDLE} c
                WHERE c.symbol = a.asset || '-{QUOTE}' AND c.source = '{CandleSource.INDEX}' AND c.interval = '1m'
                  AND c.open_time < f.created_at
                ORDER BY c.open_time DESC LIMIT 1) AS price
        FROM edge f JOIN trader_accounts a ON a.id = f.account_id
    )"""
    bounds = (first_end, first_end, first_end, last_end, first_start, last_end, first_start, last_end)
    params += [_moment(t) for t in bounds]
    return sql, params


def _insert_postgresql(days, prices, marks) -> int:
    parts, params = _parts_sql(days)
    price_rows = [(day, asset, price) for day in days for asset, price in prices[day].items()]
    price_sql, price_params = unnest_arrays(
        [[r[0] for r in price_rows], [r[1] for r in price_rows], [r[2] for r in price_rows]],
        ["date", "text", "numeric"],
    )
    mark_rows = list(marks.items())
    mark_sql, mark_params = unnest_arrays(
        [[k[0] for k, _ in mark_rows], [k[1] for k, _ in mark_rows], [v for _, v in mark_rows]],
        ["date", "bigint", "numeric"],
    )
    sql = f"""{parts},
    prices AS (SELECT * FROM unnest({price_sql}) AS p(day, asset, price)),
    marks AS (SELECT * FROM unnest({mark_sql}) AS m(day, instrument_id, mark)),
    valued AS (
        SELECT h.day, h.user_id, h.quantity * p.price AS value, 0 AS flow
        FROM holdings h JOIN prices p ON p.day = h.day AND p.asset = h.asset
        UNION ALL
        SELECT o.day, o.user_id, o.contracts * m.mark, 0
        FROM options o JOIN marks m ON m.day = o.day AND m.instrument_id = o.instrument_id
        UNION ALL
        SELECT f.day, f.user_id, 0, f.amount * COALESCE(CASE WHEN f.asset = '{QUOTE}' THEN 1 END, f.price, p.price)
        FROM flows f JOIN prices p ON p.day = f.day AND p.asset = f.asset
    )
    INSERT INTO {DailySnapshot._meta.db_table} (user_id, date, value_usdt, net_flows_usdt, created_at)
    SELECT user_id, day, ROUND(SUM(value), 8), ROUND(SUM(flow), 8), now()
    FROM valued GROUP BY user_id, day
    ON CONFLICT (user_id, date) DO NOTHING"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params + price_params + mark_params)
        return cursor.rowcount


def _insert_portable(days, prices, marks) -> int:
    """The same rows, the arithmetic in Python (SQLite keeps integer units)."""
    parts, params = _parts_sql(days)
    value: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    flows: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    priced = set(days)

    def as_day(raw) -> date:
        return raw if isinstance(raw, date) else date.fromisoformat(raw)

    with connection.cursor() as cursor:
        cursor.execute(f"{parts} SELECT day, user_id, asset, quantity FROM holdings", params)
        for raw_day, user_id, asset, quantity in cursor.fetchall():
            day = as_day(raw_day)
            value[(user_id, day)] += _units(quantity) * prices[day].get(asset, Decimal(0))
        cursor.execute(f"{parts} SELECT day, user_id, instrument_id, contracts FROM options", params)
        for raw_day, user_id, instrument_id, contracts in cursor.fetchall():
            day = as_day(raw_day)
            value[(user_id, day)] += _units(contracts) * marks.get((day, instrument_id), Decimal(0))
        cursor.execute(f"{parts} SELECT day, user_id, asset, amount, price FROM flows", params)
        for raw_day, user_id, asset, amount, price in cursor.fetchall():
            day = as_day(raw_day)
            if day not in priced:
                continue
            rate = Decimal(1) if asset == QUOTE else _units(price) if price is not None else prices[day][asset]
            flows[(user_id, day)] += _units(amount) * rate
    now = timezone.now()
    rows = [
        DailySnapshot(
            user_id=user_id,
            date=day,
            value_usdt=total.quantize(SNAPSHOT_PLACES, rounding=ROUND_HALF_UP),
            net_flows_usdt=flows.get((user_id, day), Decimal(0)).quantize(SNAPSHOT_PLACES, rounding=ROUND_HALF_UP),
            created_at=now,
        )
        for (user_id, day), total in value.items()
    ]
    before = DailySnapshot.objects.filter(date__in=days).count()
    DailySnapshot.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    return DailySnapshot.objects.filter(date__in=days).count() - before


# --- the service ---------------------------------------------------------------------------------


@dataclass
class SnapshotRun:
    days: list[date]
    written: int
    skipped: dict[date, list[str]]  # days left out, with the assets that had no price
    seconds: float


def snapshots_write(*, days: Sequence[date], progress: Callable[[str], None] | None = None) -> SnapshotRun:
    """Write the snapshots of ``days`` (closed UTC days) for every trader: one statement per
    chunk of days, each in its own transaction. Rows that exist are kept as they are."""
    started = time.perf_counter()
    closed = last_closed_day()
    days = sorted(set(days))
    if days and days[-1] > closed:
        raise ValidationFailed(
            f"{days[-1]} has not ended yet: the last closed day is {closed}.",
            fields={"date": [f"At most {closed.isoformat()}."]},
        )
    written, skipped = 0, {}
    for offset in range(0, len(days), CHUNK_DAYS):
        chunk = days[offset : offset + CHUNK_DAYS]
        chunk_started = time.perf_counter()
        prices = close_prices(chunk)
        missing = {day: [a for a in PRICED if a not in prices[day]] for day in chunk}
        skipped.update({day: assets for day, assets in missing.items() if assets})
        ready = [day for day in chunk if not missing[day]]
        count = 0
        if ready:
            marks = option_marks(ready, prices)
            with transaction.atomic(durable=True):
                if connection.vendor == "postgresql":
                    count = _insert_postgresql(ready, prices, marks)
                else:
                    count = _insert_portable(ready, prices, marks)
        written += count
        if progress:
            gap = f", {len(chunk) - len(ready)} without prices" if len(ready) < len(chunk) else ""
            progress(
                f"{chunk[0]} .. {chunk[-1]}: {len(ready)} days{gap}, {count} snapshots written "
                f"({time.perf_counter() - chunk_started:.1f} s)"
            )
    return SnapshotRun(days=list(days), written=written, skipped=skipped, seconds=time.perf_counter() - started)


def first_activity_day() -> date | None:
    """The day of the first posted transfer of any trader account."""
    first = (
        Transfer.objects.filter(kind__in=[TransferKind.POSTED, TransferKind.POST_PENDING])
        .filter(credit_account__kind=AccountKind.USER)
        .aggregate(first=Min("created_at"))["first"]
    )
    return first.astimezone(UTC).date() if first else None


def days_due(*, now: datetime | None = None, backfill: bool = False) -> list[date]:
    """The closed days that have no snapshots yet: after the last day written, up to
    yesterday; on the first run (or with ``backfill``) from the first day of the ledger
    (at most five years back)."""
    closed = last_closed_day(now)
    last_written = None if backfill else DailySnapshot.objects.aggregate(last=Max("date"))["last"]
    start = last_written + timedelta(days=1) if last_written is not None else (first_activity_day() or closed)
    start = max(start, closed - timedelta(days=MAX_BACKFILL_DAYS - 1))
    return [start + timedelta(days=n) for n in range((closed - start).days + 1)]


def snapshots_catch_up(
    *, now: datetime | None = None, backfill: bool = False, progress: Callable[[str], None] | None = None
) -> SnapshotRun:
    """What the midnight task does: snapshot every closed day not written yet (yesterday, on
    a normal night), after a short grace for writes that straddle midnight."""
    now = now or timezone.now()
    since_close = (now - day_start(now.astimezone(UTC).date())).total_seconds()
    if since_close < GRACE_SECONDS:
        time.sleep(GRACE_SECONDS - since_close)
    return snapshots_write(days=days_due(now=now, backfill=backfill), progress=progress)


def snapshots_of(*, user, start: date | None = None, end: date | None = None):
    qs = DailySnapshot.objects.filter(user=user)
    if start:
        qs = qs.filter(date__gte=start)
    if end:
        qs = qs.filter(date__lte=end)
    return qs.order_by("date")


# --- the equity curve ------------------------------------------------------------------------------------

PERIODS = {"7d": 7, "30d": 30, "90d": 90, "1y": 365, "all": None}


def check_period_name(period: str) -> str:
    if period not in PERIODS:
        raise ValidationFailed(f"Unknown period {period!r}.", fields={"period": [f"One of {', '.join(PERIODS)}."]})
    return period


def flows_between(*, user_id: int, start: datetime, end: datetime) -> Decimal:
    """Deposits minus withdrawals of the trader in [start, end), each valued in USDT when it
    was booked: the snapshots' definition of a flow, for a stretch no snapshot covers yet."""
    accounts = dict(LedgerAccount.objects.filter(kind=AccountKind.USER, user_id=user_id).values_list("pk", "asset"))
    if not accounts:
        return Decimal(0)
    edge = Transfer.objects.filter(
        kind__in=[TransferKind.POSTED, TransferKind.POST_PENDING], created_at__gte=start, created_at__lt=end
    )
    inbound = edge.filter(credit_account_id__in=accounts, debit_account__kind=AccountKind.EXTERNAL)
    outbound = edge.filter(debit_account_id__in=accounts, credit_account__kind=AccountKind.EXTERNAL)
    total = Decimal(0)
    for sign, rows in ((1, inbound), (-1, outbound)):
        for asset, amount, created_at in rows.values_list("asset", "amount", "created_at"):
            price = price_at(asset=asset, at=created_at) or price_at(asset=asset, at=end) or Decimal(0)
            total += sign * amount * price
    return total.quantize(SNAPSHOT_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CurvePoint:
    date: date
    at: datetime  # the close of ``date`` for a snapshot; the moment of the live value
    value_usdt: Decimal
    net_flows_usdt: Decimal
    live: bool = False


@dataclass(frozen=True)
class Performance:
    period: str
    start: datetime
    end: datetime
    points: list[CurvePoint]
    twr: Decimal | None
    mwr: Decimal | None
    twr_annualized: Decimal | None
    mwr_annualized: Decimal | None
    stale: bool


def _live_value(live, now: datetime) -> Decimal | None:
    """The portfolio's value now. An asset the live prices cannot value (the feed never
    printed since the last restart) is valued at its last index candle, as the snapshots
    are; if it has none either, there is no live value (and no live point)."""
    from . import core

    total = live.total_usdt
    for line in live.assets:
        if line.value_usdt is None and line.quantity:
            price = price_at(asset=line.asset, at=now)
            if price is None:
                return None
            total += core.usdt(line.quantity * price)
    return total


def performance_of(*, user, period: str, now: datetime | None = None) -> Performance:
    """The trader's equity curve over ``period`` and its returns: the daily snapshots from the
    last close at or before the period's start, then the value now (live prices). The first
    point is where the period starts (its flows are not counted); a trader who came later
    starts from nothing at the start of their first day."""
    from . import core, selectors

    check_period_name(period)
    now = now or timezone.now()
    days = PERIODS[period]
    base_day = None if days is None else (now - timedelta(days=days)).astimezone(UTC).date() - timedelta(days=1)
    rows = list(snapshots_of(user=user, start=base_day).values_list("date", "value_usdt", "net_flows_usdt"))
    points = [CurvePoint(day, day_end(day), value, flows) for day, value, flows in rows]
    live = selectors.portfolio_of(user=user, method=core.FIFO, now=now)
    live_value = _live_value(live, now)
    if not points or base_day is None or points[0].date != base_day:
        first = points[0].date if points else now.astimezone(UTC).date()
        before = first - timedelta(days=1)
        # A trader newer than the period starts from nothing; one the nightly run has not
        # seen yet, from the value at today's start as the portfolio reads it.
        opening = Decimal(0) if points else live.value_at_day_start_usdt
        points.insert(0, CurvePoint(before, day_end(before), opening, Decimal(0)))
    if live_value is not None:
        flows = flows_between(user_id=user.pk, start=points[-1].at, end=now)
        points.append(CurvePoint(now.astimezone(UTC).date(), now, live_value, flows, live=True))
    result = performance.returns([performance.Point(p.at, p.value_usdt, p.net_flows_usdt) for p in points])
    return Performance(
        period=period,
        start=points[0].at,
        end=points[-1].at,
        points=points,
        twr=result.twr,
        mwr=result.mwr,
        twr_annualized=result.twr_annualized,
        mwr_annualized=result.mwr_annualized,
        stale=live.stale,
    )
