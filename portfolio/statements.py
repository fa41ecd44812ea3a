"""Account statements: a trader's balances at the start and end of a period, what moved them
(deposits, withdrawals, trades, fees, option activity), and the realized and unrealized PnL,
as JSON, CSV and PDF.

The opening and closing balances are the ledger's own: each account's posted balance now,
less what was posted from that moment on. The movements come from the transaction rows of
``exports``; per asset, opening + the movements = closing, and anything the rows did not
explain would show as ``other`` (never silently dropped). Realized PnL is ``pnl_of`` for the
period; unrealized PnL is the portfolio's now, or for a period that ended earlier, the
history up to its end replayed with the same method and priced at that moment.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from ledger.models import AccountKind, LedgerAccount, Transfer
from marketdata.models import Instrument, InstrumentKind
from marketdata.options import series_price
from trading.api import parse_time
from trading.errors import ValidationFailed
from trading.formatting import utc_string
from trading.money import ASSETS

from . import core, exports, history, selectors
from .exports import POSTED, Txn, amount_text

FORMATS = ("json", "csv", "pdf")
MAX_RANGE = selectors.MAX_PNL_RANGE
USDT = "USDT"
ZERO = Decimal(0)


# --- the period -------------------------------------------------------------------------------------------


def parse_moment(raw: str | None, *, field: str) -> datetime | None:
    """A day (``2026-11-01``: its 00:00 UTC) or an ISO 8601 time; None when blank."""
    if not raw:
        return None
    if len(raw) == 10:
        try:
            return datetime.combine(date.fromisoformat(raw), time(0), tzinfo=UTC)
        except ValueError:
            pass
    return parse_time(raw, field=field)


def check_period(start: datetime | None, end: datetime | None, *, now: datetime | None = None):
    """[start, end): end defaults to now (and a later end is now: nothing is known past it),
    start to the first day of end's month. Refused when reversed, empty or longer than five
    years."""
    now = now or timezone.now()
    end = min(end or now, now)
    start = start or datetime(end.year, end.month, 1, tzinfo=UTC)
    if start >= end:
        raise ValidationFailed("start must be before end (and before now).", fields={"end": ["Must be after start."]})
    if end - start > MAX_RANGE:
        raise ValidationFailed(
            "The period is longer than five years.", fields={"start": ["At most five years before end."]}
        )
    return start, end


# --- the statement -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BalanceLine:
    asset: str
    opening: Decimal
    closing: Decimal
    change: Decimal
    closing_price_usdt: Decimal | None
    closing_value_usdt: Decimal | None


@dataclass
class MovementLine:
    asset: str
    deposits: Decimal = ZERO
    withdrawals: Decimal = ZERO
    withdrawal_fees: Decimal = ZERO
    trades_in: Decimal = ZERO
    trades_out: Decimal = ZERO
    trading_fees: Decimal = ZERO
    options_in: Decimal = ZERO
    options_out: Decimal = ZERO
    other: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return (
            self.deposits
            - self.withdrawals
            - self.withdrawal_fees
            + self.trades_in
            - self.trades_out
            - self.trading_fees
            + self.options_in
            - self.options_out
        )


@dataclass(frozen=True)
class FeeLine:
    asset: str
    trading: Decimal
    withdrawal: Decimal
    total: Decimal


@dataclass
class Statement:
    email: str
    start: datetime
    end: datetime
    generated_at: datetime
    method: str
    balances: list[BalanceLine]
    movements: list[MovementLine]
    trades: list[Txn]
    transfers: list[Txn]
    options: list[Txn]
    fees: list[FeeLine]
    closing_value_usdt: Decimal
    realized_pnl_usdt: Decimal
    realized_by_asset: dict[str, Decimal]
    unrealized_pnl_usdt: Decimal
    unrealized_by_asset: dict[str, Decimal] = field(default_factory=dict)
    stale: bool = False


def balances_at(*, user, at: datetime) -> dict[str, Decimal]:
    """The trader's ledger balance of each asset at ``at`` (holds included): the posted
    balance now, less what was posted from ``at`` on."""
    accounts = {}
    balances = dict.fromkeys(ASSETS, ZERO)
    for pk, asset, credits, debits in LedgerAccount.objects.filter(kind=AccountKind.USER, user=user).values_list(
        "pk", "asset", "credits_posted", "debits_posted"
    ):
        accounts[pk] = asset
        balances[asset] = credits - debits
    later = Transfer.objects.filter(
        Q(debit_account_id__in=accounts) | Q(credit_account_id__in=accounts), kind__in=POSTED, created_at__gte=at
    ).values_list("asset", "amount", "debit_account_id", "credit_account_id")
    for asset, amount, debit, credit in later:
        if credit in accounts:
            balances[asset] -= amount
        if debit in accounts:
            balances[asset] += amount
    return balances


def _movements(rows: list[Txn], opening: dict, closing: dict) -> list[MovementLine]:
    lines = {asset: MovementLine(asset) for asset in ASSETS}
    for row in rows:
        if row.kind == "deposit":
            lines[row.received_asset].deposits += row.received_amount
        elif row.kind == "withdrawal":
            if row.sent_amount:
                lines[row.sent_asset].withdrawals += row.sent_amount
            if row.fee_amount:
                lines[row.fee_asset].withdrawal_fees += row.fee_amount
        elif row.kind in ("buy", "sell"):
            lines[row.received_asset].trades_in += row.received_amount
            lines[row.sent_asset].trades_out += row.sent_amount
            if row.fee_amount:
                lines[row.fee_asset].trading_fees += row.fee_amount
        else:  # options: only their USDT side is a balance
            if row.received_asset in lines and row.received_amount:
                lines[row.received_asset].options_in += row.received_amount
            if row.sent_asset in lines and row.sent_amount:
                lines[row.sent_asset].options_out += row.sent_amount
    for asset, line in lines.items():
        line.other = closing[asset] - opening[asset] - line.net
    return list(lines.values())


def _mark_at(instrument: Instrument, *, at: datetime, index: Decimal) -> Decimal:
    """USDT per contract at ``at``: the chain's mark then, or the intrinsic value once expired."""
    if at >= instrument.expiry:
        gap = index - instrument.strike if instrument.option_type == "C" else instrument.strike - index
        return max(gap, ZERO)
    return series_price(instrument=instrument, now=at, index=index).mark_usdt


def _unrealized_at(*, user, end: datetime, method: str) -> tuple[dict[str, Decimal], bool]:
    """Unrealized PnL per asset (and option series) at ``end``: the history up to then
    replayed with ``method``, each open position at its price (options at their mark) then."""
    book = core.replay(history.history_of(user_id=user.pk, until=end), method)
    prices, stale = {}, False
    series = [asset for asset, held in book.holdings.items() if asset not in ASSETS and held.quantity]
    instruments = {i.symbol: i for i in Instrument.objects.filter(kind=InstrumentKind.OPTION, symbol__in=series)}
    for asset, held in book.holdings.items():
        if asset == core.CASH or not held.quantity:
            continue
        instrument = instruments.get(asset)
        underlying = instrument.base if instrument is not None else asset
        price = selectors.price_at(asset=underlying, at=end)
        if price is None:
            stale = True
            continue
        prices[asset] = _mark_at(instrument, at=end, index=price) if instrument is not None else price
    return core.unrealized(book, prices), stale


def statement_of(*, user, start: datetime | None, end: datetime | None, method: str = core.FIFO) -> Statement:
    selectors.check_method(method)
    now = timezone.now()
    start, end = check_period(start, end, now=now)
    rows = exports.transactions_of(user=user, start=start, end=end)
    opening, closing = balances_at(user=user, at=start), balances_at(user=user, at=end)
    prices = {asset: selectors.price_at(asset=asset, at=end) for asset in ASSETS}
    balances = []
    for asset in ASSETS:
        price = prices[asset]
        value = None if price is None else core.usdt(closing[asset] * price)
        balances.append(
            BalanceLine(asset, opening[asset], closing[asset], closing[asset] - opening[asset], price, value)
        )
    fees: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for row in rows:
        if row.fee_amount:
            fees[row.fee_asset][0 if row.kind in ("buy", "sell") else 1] += row.fee_amount
    realized = selectors.pnl_of(user=user, start=start, end=end, method=method)
    if end >= now - timedelta(seconds=1):
        live = selectors.portfolio_of(user=user, method=method, now=end)
        unrealized = {a.asset: a.unrealized_pnl_usdt for a in live.assets if a.unrealized_pnl_usdt}
        unrealized.update(
            {p.series: p.unrealized_pnl_usdt for p in live.options.positions if p.unrealized_pnl_usdt is not None}
        )
        unrealized = {asset: value for asset, value in unrealized.items() if value}
        unrealized_total, stale = live.unrealized_pnl_usdt, live.stale
    else:
        unrealized, stale = _unrealized_at(user=user, end=end, method=method)
        unrealized = {asset: value for asset, value in unrealized.items() if value}
        unrealized_total = sum(unrealized.values(), ZERO)
    return Statement(
        email=user.email,
        start=start,
        end=end,
        generated_at=now,
        method=method,
        balances=balances,
        movements=_movements(rows, opening, closing),
        trades=[r for r in rows if r.kind in ("buy", "sell")],
        transfers=[r for r in rows if r.kind in ("deposit", "withdrawal")],
        options=[r for r in rows if r.kind.startswith("option_")],
        fees=[FeeLine(asset, t, w, t + w) for asset, (t, w) in sorted(fees.items())],
        closing_value_usdt=sum((b.closing_value_usdt or ZERO for b in balances), ZERO),
        realized_pnl_usdt=realized.total_usdt,
        realized_by_asset=dict(sorted(realized.by_asset.items())),
        unrealized_pnl_usdt=unrealized_total,
        unrealized_by_asset=dict(sorted(unrealized.items())),
        stale=stale or any(b.closing_price_usdt is None for b in balances),
    )


# --- CSV -------------------------------------------------------------------------------------------------------


def _text(value: Decimal | None, asset: str = USDT) -> str:
    return amount_text(asset, value)


def _trade_cells(row: Txn) -> list[str]:
    base = row.symbol.split("-")[0]
    quantity = row.received_amount if row.kind == "buy" else row.sent_amount
    quote = row.sent_amount if row.kind == "buy" else row.received_amount
    return [
        utc_string(row.at),
        row.kind,
        row.source,
        row.symbol,
        _text(quantity, base),
        "" if row.price_usdt is None else f"{row.price_usdt.normalize():f}",
        _text(quote),
        _text(row.fee_amount, row.fee_asset),
        row.fee_asset if row.fee_amount else "",
        row.reference,
    ]


def _transfer_cells(row: Txn) -> list[str]:
    amount = row.received_amount if row.kind == "deposit" else row.sent_amount
    asset = row.received_asset if row.kind == "deposit" else (row.sent_asset or row.fee_asset)
    return [utc_string(row.at), row.kind, asset, _text(amount, asset), _text(row.fee_amount, asset), row.reference]


def _option_cells(row: Txn) -> list[str]:
    buying = row.kind == "option_buy"
    contracts = row.received_amount if buying else row.sent_amount
    usdt = row.sent_amount if buying else row.received_amount
    return [
        utc_string(row.at),
        row.kind,
        row.symbol,
        f"{contracts.normalize():f}" if contracts is not None else "",
        "" if row.price_usdt is None else f"{row.price_usdt.normalize():f}",
        _text(usdt or ZERO),
        row.reference,
    ]


SECTIONS = {
    "balances": ["asset", "opening", "closing", "change", "closing_price_usdt", "closing_value_usdt"],
    "movements": [
        "asset",
        "deposits",
        "withdrawals",
        "withdrawal_fees",
        "trades_in",
        "trades_out",
        "trading_fees",
        "options_in",
        "options_out",
        "other",
    ],
    "trades": [
        "time",
        "side",
        "source",
        "symbol",
        "quantity",
        "price_usdt",
        "quote_usdt",
        "fee",
        "fee_asset",
        "reference",
    ],
    "deposits_withdrawals": ["time", "type", "asset", "amount", "fee", "reference"],
    "options": ["time", "type", "series", "contracts", "price_usdt", "usdt", "reference"],
    "fees": ["asset", "trading", "withdrawal", "total"],
    "pnl": ["kind", "asset", "usdt"],
}


def section_rows(statement: Statement) -> dict[str, list[list[str]]]:
    """Every section's rows as text, shared by the CSV and the PDF."""
    pnl = [["realized", asset, _text(v)] for asset, v in statement.realized_by_asset.items()]
    pnl.append(["realized", "total", _text(statement.realized_pnl_usdt)])
    pnl += [["unrealized", asset, _text(v)] for asset, v in statement.unrealized_by_asset.items()]
    pnl.append(["unrealized", "total", _text(statement.unrealized_pnl_usdt)])
    return {
        "balances": [
            [
                b.asset,
                _text(b.opening, b.asset),
                _text(b.closing, b.asset),
                _text(b.change, b.asset),
                "" if b.closing_price_usdt is None else f"{b.closing_price_usdt.normalize():f}",
                _text(b.closing_value_usdt),
            ]
            for b in statement.balances
        ],
        "movements": [
            [
                m.asset,
                *(
                    _text(getattr(m, name), m.asset)
                    for name in (
                        "deposits",
                        "withdrawals",
                        "withdrawal_fees",
                        "trades_in",
                        "trades_out",
                        "trading_fees",
                        "options_in",
                        "options_out",
                        "other",
                    )
                ),
            ]
            for m in statement.movements
        ],
        "trades": [_trade_cells(r) for r in statement.trades],
        "deposits_withdrawals": [_transfer_cells(r) for r in statement.transfers],
        "options": [_option_cells(r) for r in statement.options],
        "fees": [
            [f.asset, _text(f.trading, f.asset), _text(f.withdrawal, f.asset), _text(f.total, f.asset)]
            for f in statement.fees
        ],
        "pnl": pnl,
    }


def render_csv(statement: Statement) -> str:
    """One CSV file: a heading block, then each section as its name on a line, its header
    and its rows, a blank line between sections."""
    heading = [
        ("statement", statement.email),
        ("start", utc_string(statement.start)),
        ("end", utc_string(statement.end)),
        ("generated_at", utc_string(statement.generated_at)),
        ("method", statement.method),
        ("closing_value_usdt", _text(statement.closing_value_usdt)),
    ]
    return sections_csv(heading, [(name, SECTIONS[name], rows) for name, rows in section_rows(statement).items()])


def sections_csv(heading, sections) -> str:
    """A report as one CSV file: the ``heading`` pairs (name, value) one a line, then each of
    ``sections`` (name, header, rows) as its name alone on a line, its header and its rows,
    after a blank line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([name, value] for name, value in heading)
    for name, header, rows in sections:
        writer.writerow([])
        writer.writerow([name])
        writer.writerow(header)
        writer.writerows(rows)
    return out.getvalue()


# --- PDF -------------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_TITLES = {
    "balances": "Balances",
    "movements": "What moved the balances",
    "trades": "Trades",
    "deposits_withdrawals": "Deposits and withdrawals",
    "options": "Option activity",
    "fees": "Fees",
    "pnl": "Profit and loss (USDT)",
}


def render_pdf(statement: Statement) -> bytes:
    """The statement as a PDF: a heading, then each section as a table."""
    return tables_pdf(
        title="Meridian Exchange account statement",
        heading=[
            ("Title", "Meridian Exchange: account statement"),
            (
                "Normal",
                f"{statement.email}<br/>From {utc_string(statement.start)} to {utc_string(statement.end)} "
                f"(the end excluded). Cost method: {statement.method}. "
                f"Generated {utc_string(statement.generated_at)}.",
            ),
            ("Heading3", f"Balances at the end, at the prices then: {_text(statement.closing_value_usdt)} USDT"),
        ],
        sections=[(_TITLES[name], SECTIONS[name], rows) for name, rows in section_rows(statement).items()],
    )


def tables_pdf(*, title: str, heading, sections, empty: str = "None in this period.") -> bytes:
    """A report as a PDF (reportlab, A4 landscape): the ``heading`` paragraphs (style name,
    text), then each of ``sections`` (title, header, rows) as a table, the long ones running
    over as many pages as they need with their header repeated; amounts right-aligned."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=title,
        author="Meridian Exchange",
    )
    styles = getSampleStyleSheet()
    story = [Paragraph(text, styles[style]) for style, text in heading]
    table_style = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), "Helvetica", 7),
            ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf2")),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b8c0cc")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )
    for section_title, header, rows in sections:
        story.append(Spacer(1, 4 * mm))
        story.append(Paragraph(section_title, styles["Heading2"]))
        if not rows:
            story.append(Paragraph(empty, styles["Normal"]))
            continue
        table = LongTable([header, *rows], repeatRows=1, hAlign="LEFT")
        table.setStyle(table_style)
        # amounts right-aligned, so their decimal points line up down a column
        table.setStyle(
            TableStyle(
                [
                    ("ALIGN", (col, row), (col, row), "RIGHT")
                    for row, cells in enumerate(rows, start=1)
                    for col, cell in enumerate(cells)
                    if _NUMBER.fullmatch(cell)
                ]
            )
        )
        story.append(table)
    document.build(story)
    return out.getvalue()
