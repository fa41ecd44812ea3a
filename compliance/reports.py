"""Reports: a trader's yearly trade report and tax report, and the regulator's daily
transaction report.

**Trades** are every execution a trader had: their side of each fill on our book (a trade
between two of our traders is a trade of each), each smart-routed child filled at an outside
venue, each accepted RFQ block, and each option order against the counter (the counter fills
in full, so an order is its one trade). ``trades_between`` reads them with one set-based
query per kind, ordered by time, and merges them as they stream: the same rows feed the
trader's report (their own, for a year) and the regulator's (everyone's, for a day).

**The tax report** lists the capital gain of each disposal of a year: what was sold,
withdrawn (at its value then), spent as a fee, or closed, exercised or expired (an option
series), with its proceeds net of fees, the cost of the lots it used (fees included) and when
they were acquired. The disposals are the portfolio's own (``portfolio.selectors.pnl_of``:
the one replay of the trader's ledger history, by FIFO or average cost), so the totals are
``/portfolio/pnl``'s realized PnL for the same method and year.

A year is the calendar year in UTC: [1 January 00:00, next 1 January 00:00).
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import hmac
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from orders.options.models import OptionOrder
from orders.spot.models import RfqQuote, SpotTrade, VenueOrder
from portfolio import core, selectors
from portfolio.exports import amount_text
from portfolio.statements import sections_csv, tables_pdf
from trading.formatting import utc_string
from trading.money import parse_int

QUOTE = "USDT"
FIRST_YEAR = 2009  # no crypto-asset trade is older
OUR_BOOK = "meridian"  # the venue of a fill on our own book
RFQ_DESK = "meridian-rfq"
OPTIONS_COUNTER = "meridian-options"
TRADE_FORMATS = ("json", "csv")
TAX_FORMATS = ("json", "csv", "pdf")
ZERO = Decimal(0)
_CHUNK = 2000  # rows a query's cursor fetches at a time
_PRICE_STEP = Decimal("0.00000001")  # a venue fill's price is its average


# --- the year -----------------------------------------------------------------------------------------------


def parse_year(raw, *, now: datetime | None = None) -> int:
    """A calendar year from FIRST_YEAR to this one (blank: this one); else validation_error."""
    this_year = (now or timezone.now()).astimezone(UTC).year
    return parse_int(raw, field="year", default=this_year, low=FIRST_YEAR, high=this_year)


def year_bounds(year: int) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


def check_year(year: int) -> int:
    return parse_year(str(year))


# --- trades ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradeRow:
    at: datetime
    instrument: str  # BTC-USDT, or an option series
    side: str  # buy or sell: the trader's
    price: Decimal  # USDT per unit of the base, or per contract
    quantity: Decimal  # the base, or contracts
    notional: Decimal  # USDT: price x quantity as the trade settled it
    fee: Decimal
    fee_asset: str  # what the fee was taken in (the asset received); USDT where there is none
    order_id: str  # the order it filled: the spot order (as /orders names it), the venue child's
    # smart order, the RFQ quote, or the option order
    trade_id: str  # unique across the report: spot:<trade>, venue:<client order id>, rfq:<quote>, option:<order>
    source: str  # book, smart, rfq, option
    venue: str  # where it executed: meridian (our book), an outside venue, meridian-rfq, meridian-options
    user_id: int

    @property
    def base(self) -> str:
        return self.instrument.split("-")[0] if self.source != "option" else self.instrument


def _spot_rows(start, end, user_id) -> Iterator[TradeRow]:
    trades = SpotTrade.objects.filter(created_at__gte=start, created_at__lt=end)
    if user_id is not None:
        trades = trades.filter(Q(maker_user_id=user_id) | Q(taker_user_id=user_id))
    fields = (
        "created_at",
        "pk",
        "symbol",
        "taker_side",
        "price",
        "quantity",
        "quote_amount",
        "maker_user_id",
        "maker_order_id",
        "maker_fee",
        "taker_user_id",
        "taker_order_id",
        "taker_fee",
    )
    for row in trades.order_by("created_at", "pk").values_list(*fields).iterator(chunk_size=_CHUNK):
        at, pk, symbol, taker_side, price, quantity, notional = row[:7]
        base = symbol.split("-")[0]
        maker_side = "sell" if taker_side == "buy" else "buy"
        # each party's side of the one trade, the maker's first
        for side, party, order, fee in ((maker_side, *row[7:10]), (taker_side, *row[10:13])):
            if user_id is None or party == user_id:
                yield TradeRow(
                    at,
                    symbol,
                    side,
                    price,
                    quantity,
                    notional,
                    fee,
                    base if side == "buy" else QUOTE,
                    str(order),
                    f"spot:{pk}",
                    "book",
                    OUR_BOOK,
                    party,
                )


def _venue_rows(start, end, user_id) -> Iterator[TradeRow]:
    children = VenueOrder.objects.filter(filled_quantity__gt=0, closed_at__gte=start, closed_at__lt=end)
    if user_id is not None:
        children = children.filter(user_id=user_id)
    fields = (
        "closed_at",
        "client_order_id",
        "symbol",
        "side",
        "average_price",
        "filled_quantity",
        "filled_quote",
        "fee",
        "parent_id",
        "venue",
        "user_id",
    )
    for at, coid, symbol, side, price, quantity, notional, fee, parent, venue, user in (
        children.order_by("closed_at", "client_order_id").values_list(*fields).iterator(chunk_size=_CHUNK)
    ):
        if price is None:
            price = (notional / quantity).quantize(_PRICE_STEP)
        base = symbol.split("-")[0]
        fee_asset = base if side == "buy" else QUOTE
        yield TradeRow(
            at,
            symbol,
            side,
            price,
            quantity,
            notional,
            fee,
            fee_asset,
            str(parent),
            f"venue:{coid}",
            "smart",
            venue,
            user,
        )


def _rfq_rows(start, end, user_id) -> Iterator[TradeRow]:
    quotes = RfqQuote.objects.filter(accepted_at__gte=start, accepted_at__lt=end)
    if user_id is not None:
        quotes = quotes.filter(user_id=user_id)
    fields = ("accepted_at", "pk", "symbol", "side", "price", "quantity", "quote_amount", "user_id")
    for at, pk, symbol, side, price, quantity, notional, user in (
        quotes.order_by("accepted_at", "pk").values_list(*fields).iterator(chunk_size=_CHUNK)
    ):
        if notional is None:
            notional = core.worth(quantity, price)
        fee_asset = symbol.split("-")[0] if side == "buy" else QUOTE
        # a block has no fee: its price is all
        yield TradeRow(
            at, symbol, side, price, quantity, notional, ZERO, fee_asset, str(pk), f"rfq:{pk}", "rfq", RFQ_DESK, user
        )


def _option_rows(start, end, user_id) -> Iterator[TradeRow]:
    orders = OptionOrder.objects.filter(created_at__gte=start, created_at__lt=end)
    if user_id is not None:
        orders = orders.filter(user_id=user_id)
    fields = ("created_at", "pk", "series", "side", "price_usdt", "contracts", "total_usdt", "user_id")
    for at, pk, series, side, price, contracts, total, user in (
        orders.order_by("created_at", "pk").values_list(*fields).iterator(chunk_size=_CHUNK)
    ):
        # the counter's spread is in its price: no fee on top
        yield TradeRow(
            at,
            series,
            side,
            price,
            contracts,
            total,
            ZERO,
            QUOTE,
            str(pk),
            f"option:{pk}",
            "option",
            OPTIONS_COUNTER,
            user,
        )


def trades_between(*, start: datetime, end: datetime, user_id: int | None = None) -> Iterator[TradeRow]:
    """Every trade executed in [start, end) (of one trader, or of all), oldest first (ties
    by trade id), streamed: one query per kind of trade, read in chunks and merged."""
    sources = [reader(start, end, user_id) for reader in (_spot_rows, _venue_rows, _rfq_rows, _option_rows)]
    return heapq.merge(*sources, key=lambda row: (row.at, row.trade_id))


@dataclass
class TradeReport:
    year: int
    start: datetime
    end: datetime
    trades: list[TradeRow]


def trade_report_of(*, user, year: int) -> TradeReport:
    """The trader's trades of ``year`` (their own, only)."""
    start, end = year_bounds(check_year(year))
    return TradeReport(year, start, end, list(trades_between(start=start, end=end, user_id=user.pk)))


TRADE_HEADER = [
    "time",
    "instrument",
    "side",
    "price",
    "quantity",
    "notional_usdt",
    "fee",
    "fee_asset",
    "order_id",
    "trade_id",
    "source",
    "venue",
]


def _trade_cells(row: TradeRow) -> list[str]:
    return [
        utc_string(row.at),
        row.instrument,
        row.side,
        f"{row.price.normalize():f}",
        amount_text(row.base, row.quantity),
        amount_text(QUOTE, row.notional),
        amount_text(row.fee_asset, row.fee),
        row.fee_asset,
        row.order_id,
        row.trade_id,
        row.source,
        row.venue,
    ]


def render_trades_csv(report: TradeReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TRADE_HEADER)
    writer.writerows(_trade_cells(row) for row in report.trades)
    return out.getvalue()


# --- the regulator's daily report ---------------------------------------------------------------------------


REGULATOR_HEADER = [
    "time",
    "instrument",
    "side",
    "price",
    "quantity",
    "notional_usdt",
    "fee",
    "fee_asset",
    "user_reference",
    "venue",
    "trade_id",
]


def user_reference(user_id: int) -> str:
    """A trader's pseudonymous reference in reports to the regulator: the same trader always
    has the same one (keyed with REPORT_USER_REFERENCE_KEY), and it tells nothing about them
    without that key."""
    key = settings.REPORT_USER_REFERENCE_KEY.encode()
    digest = hmac.new(key, f"meridian-user:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"MX-{digest[:20].upper()}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def regulator_rows(day: date) -> Iterator[list[str]]:
    """The daily transaction report's rows (``REGULATOR_HEADER``), one per trade and trader,
    oldest first."""
    start, end = day_bounds(day)
    references: dict[int, str] = {}
    for row in trades_between(start=start, end=end):
        reference = references.get(row.user_id)
        if reference is None:
            reference = references[row.user_id] = user_reference(row.user_id)
        yield [
            utc_string(row.at),
            row.instrument,
            row.side,
            f"{row.price.normalize():f}",
            amount_text(row.base, row.quantity),
            amount_text(QUOTE, row.notional),
            amount_text(row.fee_asset, row.fee),
            row.fee_asset,
            reference,
            row.venue,
            row.trade_id,
        ]


def regulator_report_write(*, day: date, out, progress=None, every: int = 10_000) -> int:
    """Write the daily transaction report of ``day`` as CSV to the text stream ``out`` (the
    header, then ``regulator_rows``), calling ``progress(rows_so_far)`` every ``every`` rows;
    the number of rows written."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REGULATOR_HEADER)
    count = 0
    for row in regulator_rows(day):
        writer.writerow(row)
        count += 1
        if progress is not None and count % every == 0:
            progress(count)
    return count


# --- the tax report ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaxLine:
    disposed_at: datetime
    asset: str
    kind: str  # sell, withdrawal, fee, option_close, option_exercise, option_expiry, ...
    quantity: Decimal
    acquired: tuple[datetime, ...]
    proceeds_usdt: Decimal
    cost_usdt: Decimal
    gain_usdt: Decimal
    reference: str


@dataclass(frozen=True)
class TaxTotal:
    asset: str
    disposals: int
    proceeds_usdt: Decimal
    cost_usdt: Decimal
    gain_usdt: Decimal


@dataclass
class TaxReport:
    email: str
    year: int
    method: str
    start: datetime
    end: datetime
    generated_at: datetime
    disposals: list[TaxLine]
    by_asset: list[TaxTotal]
    proceeds_usdt: Decimal
    cost_usdt: Decimal
    gain_usdt: Decimal
    gains_usdt: Decimal = ZERO  # the disposals that gained, summed
    losses_usdt: Decimal = ZERO  # the disposals that lost, summed (negative)


def tax_report_of(*, user, year: int, method: str = core.FIFO) -> TaxReport:
    """Every disposal of ``year`` with its capital gain by ``method``, per asset and in total:
    the portfolio's realized PnL of the year (``pnl_of``), disposal by disposal."""
    selectors.check_method(method)
    start, end = year_bounds(check_year(year))
    pnl = selectors.pnl_of(user=user, start=start, end=end, method=method)
    lines = [
        TaxLine(
            d.at,
            d.asset,
            d.kind,
            d.quantity,
            d.acquired,
            d.proceeds_usdt,
            d.cost_usdt,
            d.pnl_usdt,
            d.reference,
        )
        for d in pnl.disposals
    ]
    sums: dict[str, list] = defaultdict(lambda: [0, ZERO, ZERO, ZERO])
    for line in lines:
        total = sums[line.asset]
        total[0] += 1
        total[1] += line.proceeds_usdt
        total[2] += line.cost_usdt
        total[3] += line.gain_usdt
    by_asset = [TaxTotal(asset, *figures) for asset, figures in sorted(sums.items())]
    return TaxReport(
        email=user.email,
        year=year,
        method=method,
        start=start,
        end=end,
        generated_at=timezone.now(),
        disposals=lines,
        by_asset=by_asset,
        proceeds_usdt=sum((t.proceeds_usdt for t in by_asset), ZERO),
        cost_usdt=sum((t.cost_usdt for t in by_asset), ZERO),
        gain_usdt=pnl.total_usdt,
        gains_usdt=sum((line.gain_usdt for line in lines if line.gain_usdt > 0), ZERO),
        losses_usdt=sum((line.gain_usdt for line in lines if line.gain_usdt < 0), ZERO),
    )


TAX_DISPOSAL_HEADER = [
    "disposed_at",
    "asset",
    "kind",
    "quantity",
    "acquired",
    "proceeds_usdt",
    "cost_basis_usdt",
    "gain_usdt",
    "reference",
]
TAX_TOTAL_HEADER = ["asset", "disposals", "proceeds_usdt", "cost_basis_usdt", "gain_usdt"]


def _usdt(value: Decimal) -> str:
    return amount_text(QUOTE, value)


def _acquired_text(moments: tuple[datetime, ...]) -> str:
    """The days the lots were acquired: one, or the first and last of several."""
    days = sorted({moment.astimezone(UTC).date().isoformat() for moment in moments})
    if not days:
        return ""
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"


def tax_sections(report: TaxReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables as text (name, header, rows), shared by the CSV and the PDF."""
    disposals = [
        [
            utc_string(line.disposed_at),
            line.asset,
            line.kind,
            amount_text(line.asset, line.quantity),
            _acquired_text(line.acquired),
            _usdt(line.proceeds_usdt),
            _usdt(line.cost_usdt),
            _usdt(line.gain_usdt),
            line.reference,
        ]
        for line in report.disposals
    ]
    totals = [
        [t.asset, str(t.disposals), _usdt(t.proceeds_usdt), _usdt(t.cost_usdt), _usdt(t.gain_usdt)]
        for t in report.by_asset
    ]
    totals.append(
        [
            "total",
            str(len(report.disposals)),
            _usdt(report.proceeds_usdt),
            _usdt(report.cost_usdt),
            _usdt(report.gain_usdt),
        ]
    )
    return [("disposals", TAX_DISPOSAL_HEADER, disposals), ("totals", TAX_TOTAL_HEADER, totals)]


def _tax_heading(report: TaxReport) -> list[tuple[str, str]]:
    return [
        ("tax_report", report.email),
        ("year", str(report.year)),
        ("start", utc_string(report.start)),
        ("end", utc_string(report.end)),
        ("method", report.method),
        ("generated_at", utc_string(report.generated_at)),
        ("gains_usdt", _usdt(report.gains_usdt)),
        ("losses_usdt", _usdt(report.losses_usdt)),
        ("net_gain_usdt", _usdt(report.gain_usdt)),
    ]


def render_tax_csv(report: TaxReport) -> str:
    return sections_csv(_tax_heading(report), tax_sections(report))


_TAX_TITLES = {"disposals": "Disposals", "totals": "Totals by asset (USDT)"}


def render_tax_pdf(report: TaxReport) -> bytes:
    method = "first in, first out" if report.method == core.FIFO else "average cost"
    return tables_pdf(
        title=f"Meridian Exchange tax report {report.year}",
        heading=[
            ("Title", f"Meridian Exchange: capital gains {report.year}"),
            (
                "Normal",
                f"{report.email}<br/>Disposals from {utc_string(report.start)} to {utc_string(report.end)} "
                f"(the end excluded). Cost basis: {method} ({report.method}), fees included in the cost and "
                f"taken off the proceeds. Generated {utc_string(report.generated_at)}.",
            ),
            (
                "Heading3",
                f"Gains {_usdt(report.gains_usdt)} USDT, losses {_usdt(report.losses_usdt)} USDT, "
                f"net {_usdt(report.gain_usdt)} USDT",
            ),
        ],
        sections=[(_TAX_TITLES[name], header, rows) for name, header, rows in tax_sections(report)],
        empty="No disposals this year.",
    )
