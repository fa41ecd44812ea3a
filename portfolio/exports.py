"""A trader's transaction history over a period, as rows a person or a tax tool can read: what
was sent, what was received and the fee of each transaction, and three CSV renderings of it.

Rows, by what caused them:

* **spot fills on our book** (smart-routed children included): one per fill, from the trade
  record: a buy sends the quote amount in USDT and receives the quantity, the fee taken off
  what was received (in the asset received, as the engine charges it);
* **fills at an outside venue** (smart routing) and **RFQ block trades**: one per venue order
  or accepted quote, the amounts from the ledger legs themselves, the venue's fee from its
  order (an RFQ has none: its price is all);
* **deposits and withdrawals**: one per movement between the trader's account and the
  outside world, a withdrawal with its fee;
* **options**: a buy to open sends the premium and receives the contracts of the series (the
  series is the asset, as the PnL books it), a sell to close the reverse; at expiry the
  contracts are sent for their payout, or for nothing when they expired worthless.

For every asset, the received amounts less the sent amounts and the fees of the rows of a
period equal the change of the trader's ledger balance over it (tests/portfolio/test_exports.py
proves it).

Fees follow the tax tools' convention: the received (or sent) amount is the gross one and the
fee is taken off the trader's balance on top of it, in its own currency.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Q

from ledger.models import AccountKind, LedgerAccount, Transfer, TransferKind
from orders.options.models import ExerciseOutcome, OptionExercise, OptionOrder, OptionSide
from orders.spot.models import RfqQuote, SpotOrder, SpotTrade, VenueOrder
from trading.money import ASSET_SCALES, fmt

QUOTE = "USDT"
AVERAGE_PRICE_STEP = Decimal("0.00000001")  # the price of a venue order or RFQ is its average
POSTED = (TransferKind.POSTED, TransferKind.POST_PENDING)
# A venue order's ledger legs are booked when it closes: look a little either side of the
# period for the orders, then keep those whose legs fall inside it.
_VENUE_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class Txn:
    at: datetime
    kind: str  # buy, sell, deposit, withdrawal, option_buy, option_sell, option_exercise, option_expiry
    source: str  # book, smart, rfq, wallet, option
    symbol: str  # the pair, the option series, or the asset moved
    sent_amount: Decimal | None
    sent_asset: str
    received_amount: Decimal | None
    received_asset: str
    fee_amount: Decimal | None
    fee_asset: str
    price_usdt: Decimal | None  # per unit of the pair's base, or per contract
    reference: str  # unique per row: what the platform calls it

    def net(self) -> dict[str, Decimal]:
        """What the row did to the trader's balances, per asset."""
        moved: dict[str, Decimal] = defaultdict(Decimal)
        if self.received_amount:
            moved[self.received_asset] += self.received_amount
        if self.sent_amount:
            moved[self.sent_asset] -= self.sent_amount
        if self.fee_amount:
            moved[self.fee_asset] -= self.fee_amount
        return dict(moved)


def _trade(at, side, symbol, quantity, quote_amount, fee, source, reference, price=None) -> Txn:
    base = symbol.split("-")[0]
    if price is None and quantity:
        price = (quote_amount / quantity).quantize(AVERAGE_PRICE_STEP)
    if side == "buy":
        return Txn(at, "buy", source, symbol, quote_amount, QUOTE, quantity, base, fee or None, base, price, reference)
    return Txn(at, "sell", source, symbol, quantity, base, quote_amount, QUOTE, fee or None, QUOTE, price, reference)


def _book_fills(user, start, end) -> list[Txn]:
    trades = list(
        SpotTrade.objects.filter(Q(maker_user=user) | Q(taker_user=user), created_at__gte=start, created_at__lt=end)
    )
    order_ids = {t.maker_order_id for t in trades if t.maker_user_id == user.pk}
    order_ids |= {t.taker_order_id for t in trades if t.taker_user_id == user.pk}
    routed = set(SpotOrder.objects.filter(pk__in=order_ids, parent__isnull=False).values_list("pk", flat=True))
    rows = []
    for trade in trades:
        for role, user_id, order_id, fee in (
            ("maker", trade.maker_user_id, trade.maker_order_id, trade.maker_fee),
            ("taker", trade.taker_user_id, trade.taker_order_id, trade.taker_fee),
        ):
            if user_id != user.pk:
                continue
            side = trade.taker_side if role == "taker" else ("sell" if trade.taker_side == "buy" else "buy")
            rows.append(
                _trade(
                    trade.created_at,
                    side,
                    trade.symbol,
                    trade.quantity,
                    trade.quote_amount,
                    fee,
                    "smart" if order_id in routed else "book",
                    f"spot_trade:{trade.symbol}:{trade.seq}:{role}",
                    price=trade.price,
                )
            )
    return rows


def _venue_fills(user, start, end) -> list[Txn]:
    children = {
        child.client_order_id: child
        for child in VenueOrder.objects.filter(
            user=user, filled_quantity__gt=0, closed_at__gte=start - _VENUE_SLACK, closed_at__lt=end + _VENUE_SLACK
        )
    }
    if not children:
        return []
    legs = {}
    for child in children.values():
        legs[child.transfer_id("post")] = (child, "post")
        legs[child.transfer_id("recv")] = (child, "recv")
    booked: dict[str, dict] = defaultdict(dict)
    for pk, amount, created_at in Transfer.objects.filter(pk__in=list(legs)).values_list("pk", "amount", "created_at"):
        child, leg = legs[pk]
        booked[child.client_order_id][leg] = (amount, created_at)
    rows = []
    for coid, found in booked.items():
        child = children[coid]
        spent, at = found["post"]
        if not start <= at < end:
            continue
        received = found.get("recv", (Decimal(0), at))[0] + child.fee  # gross: the fee is its own column
        quantity, quote_amount = (received, spent) if child.side == "buy" else (spent, received)
        rows.append(_trade(at, child.side, child.symbol, quantity, quote_amount, child.fee, "smart", f"venue:{coid}"))
    return rows


def _rfq_fills(accounts: dict[int, str], start, end) -> list[Txn]:
    """Block trades, from their two ledger legs (the trader may be either side)."""
    legs = Transfer.objects.filter(
        Q(debit_account_id__in=accounts) | Q(credit_account_id__in=accounts),
        code="rfq_trade",
        kind__in=POSTED,
        created_at__gte=start,
        created_at__lt=end,
    ).values_list("reference", "asset", "amount", "credit_account_id", "created_at")
    groups: dict[str, dict] = defaultdict(dict)
    times = {}
    for reference, asset, amount, credit, created_at in legs:
        groups[reference][asset] = amount if credit in accounts else -amount
        times[reference] = min(times.get(reference, created_at), created_at)
    quotes = {
        f"rfq:{pk}": symbol
        for pk, symbol in RfqQuote.objects.filter(pk__in=[r.split(":", 1)[1] for r in groups]).values_list(
            "pk", "symbol"
        )
    }
    rows = []
    for reference, moved in groups.items():
        usdt = moved.get(QUOTE, Decimal(0))
        base, quantity = next(((a, q) for a, q in moved.items() if a != QUOTE), ("", Decimal(0)))
        symbol = quotes.get(reference, f"{base}-{QUOTE}")
        side = "buy" if quantity > 0 else "sell"
        rows.append(_trade(times[reference], side, symbol, abs(quantity), abs(usdt), None, "rfq", reference))
    return rows


def _wallet(accounts: dict[int, str], start, end) -> list[Txn]:
    """Deposits and withdrawals: the trader's movements with the outside world, and the fee
    of each withdrawal."""
    edge = Transfer.objects.filter(kind__in=POSTED, created_at__gte=start, created_at__lt=end)
    inbound = edge.filter(credit_account_id__in=accounts, debit_account__kind=AccountKind.EXTERNAL)
    outbound = edge.filter(debit_account_id__in=accounts, credit_account__kind=AccountKind.EXTERNAL)
    fees = dict(
        edge.filter(debit_account_id__in=accounts, code="withdrawal_fee")
        .exclude(reference="")
        .values_list("reference", "amount")
    )
    rows = []
    for pk, asset, amount, created_at in inbound.values_list("pk", "asset", "amount", "created_at"):
        rows.append(Txn(created_at, "deposit", "wallet", asset, None, "", amount, asset, None, "", None, pk))
    for pk, asset, amount, created_at, reference in outbound.values_list(
        "pk", "asset", "amount", "created_at", "reference"
    ):
        fee = fees.pop(reference, None) if reference else None
        rows.append(
            Txn(
                created_at,
                "withdrawal",
                "wallet",
                asset,
                amount,
                asset,
                None,
                "",
                fee,
                asset if fee else "",
                None,
                reference or pk,
            )
        )
    # a withdrawal fee whose withdrawal is outside the period (booked a moment apart)
    for reference, amount in fees.items():
        asset = edge.filter(reference=reference, code="withdrawal_fee").values_list("asset", flat=True).first()
        at = edge.filter(reference=reference, code="withdrawal_fee").values_list("created_at", flat=True).first()
        rows.append(Txn(at, "withdrawal", "wallet", asset, None, asset, None, "", amount, asset, None, reference))
    return rows


def _options(user, start, end) -> list[Txn]:
    rows = []
    for order in OptionOrder.objects.filter(user=user, created_at__gte=start, created_at__lt=end):
        contracts, total = order.contracts, order.total_usdt
        if order.side == OptionSide.BUY:
            rows.append(
                Txn(
                    order.created_at,
                    "option_buy",
                    "option",
                    order.series,
                    total,
                    QUOTE,
                    contracts,
                    order.series,
                    None,
                    "",
                    order.price_usdt,
                    f"option_order:{order.pk}",
                )
            )
        else:
            rows.append(
                Txn(
                    order.created_at,
                    "option_sell",
                    "option",
                    order.series,
                    contracts,
                    order.series,
                    total or None,
                    QUOTE if total else "",
                    None,
                    "",
                    order.price_usdt,
                    f"option_order:{order.pk}",
                )
            )
    for exercise in OptionExercise.objects.filter(user=user, created_at__gte=start, created_at__lt=end):
        paid = exercise.outcome == ExerciseOutcome.EXERCISED and exercise.payout_usdt > 0
        rows.append(
            Txn(
                exercise.created_at,
                "option_exercise" if paid else "option_expiry",
                "option",
                exercise.series,
                exercise.contracts,
                exercise.series,
                exercise.payout_usdt if paid else None,
                QUOTE if paid else "",
                None,
                "",
                exercise.intrinsic_usdt,
                f"option_exercise:{exercise.pk}",
            )
        )
    return rows


def transactions_of(*, user, start: datetime, end: datetime) -> list[Txn]:
    """Every transaction of the trader in [start, end), oldest first."""
    accounts = dict(LedgerAccount.objects.filter(kind=AccountKind.USER, user=user).values_list("pk", "asset"))
    rows = _book_fills(user, start, end) + _venue_fills(user, start, end) + _options(user, start, end)
    if accounts:
        rows += _rfq_fills(accounts, start, end) + _wallet(accounts, start, end)
    rows.sort(key=lambda row: (row.at, row.reference))
    return rows


def ledger_change(*, user, start: datetime, end: datetime) -> dict[str, Decimal]:
    """How much each of the trader's balances moved in [start, end), from the ledger."""
    accounts = dict(LedgerAccount.objects.filter(kind=AccountKind.USER, user=user).values_list("pk", "asset"))
    moved: dict[str, Decimal] = defaultdict(Decimal)
    rows = Transfer.objects.filter(
        Q(debit_account_id__in=accounts) | Q(credit_account_id__in=accounts),
        kind__in=POSTED,
        created_at__gte=start,
        created_at__lt=end,
    ).values_list("asset", "amount", "debit_account_id", "credit_account_id")
    for asset, amount, debit, credit in rows:
        if credit in accounts:
            moved[asset] += amount
        if debit in accounts:
            moved[asset] -= amount
    return dict(moved)


# --- renderings --------------------------------------------------------------------------------------------


def amount_text(asset: str, value: Decimal | None) -> str:
    """An amount as the CSV writes it: the asset's scale for USDT, BTC and ETH; option
    contracts as they are."""
    if value is None:
        return ""
    if asset in ASSET_SCALES:
        return fmt(asset, value)
    return f"{value.normalize():f}"


CSV_HEADER = [
    "time",
    "type",
    "source",
    "symbol",
    "sent_amount",
    "sent_asset",
    "received_amount",
    "received_asset",
    "fee_amount",
    "fee_asset",
    "price_usdt",
    "reference",
]

# Koinly's "universal" import template (deposits, withdrawals and trades in one file): the
# columns of Koinly's custom CSV article (support.koinly.io, "How to create a custom CSV file
# with your data", Universal template), in its order. Dates in UTC; a fee is taken off on top
# of the amounts. Net worth is left for Koinly to price.
KOINLY_HEADER = [
    "Date",
    "Sent Amount",
    "Sent Currency",
    "Received Amount",
    "Received Currency",
    "Fee Amount",
    "Fee Currency",
    "Net Worth Amount",
    "Net Worth Currency",
    "Label",
    "Description",
    "TxHash",
]

# CoinTracker's CSV import template (support.cointracker.io, "Convert your transaction history
# to CoinTracker CSV"): these eight headers exactly, dates as MM/DD/YYYY HH:MM:SS in UTC.
COINTRACKER_HEADER = [
    "Date",
    "Received Quantity",
    "Received Currency",
    "Sent Quantity",
    "Sent Currency",
    "Fee Amount",
    "Fee Currency",
    "Tag",
]

FORMATS = ("csv", "koinly", "cointracker")

_DESCRIPTIONS = {
    "buy": "Buy {symbol} ({source})",
    "sell": "Sell {symbol} ({source})",
    "deposit": "Deposit",
    "withdrawal": "Withdrawal",
    "option_buy": "Buy to open {symbol}",
    "option_sell": "Sell to close {symbol}",
    "option_exercise": "Exercised {symbol}",
    "option_expiry": "Expired worthless {symbol}",
}


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def render(rows: list[Txn], fmt_name: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if fmt_name == "koinly":
        writer.writerow(KOINLY_HEADER)
        for row in rows:
            writer.writerow(
                [
                    _utc(row.at).strftime("%Y-%m-%d %H:%M:%S UTC"),
                    amount_text(row.sent_asset, row.sent_amount),
                    row.sent_asset if row.sent_amount else "",
                    amount_text(row.received_asset, row.received_amount),
                    row.received_asset if row.received_amount else "",
                    amount_text(row.fee_asset, row.fee_amount),
                    row.fee_asset if row.fee_amount else "",
                    "",
                    "",
                    "",
                    _DESCRIPTIONS[row.kind].format(symbol=row.symbol, source=row.source),
                    row.reference,
                ]
            )
    elif fmt_name == "cointracker":
        writer.writerow(COINTRACKER_HEADER)
        for row in rows:
            writer.writerow(
                [
                    _utc(row.at).strftime("%m/%d/%Y %H:%M:%S"),
                    amount_text(row.received_asset, row.received_amount),
                    row.received_asset if row.received_amount else "",
                    amount_text(row.sent_asset, row.sent_amount),
                    row.sent_asset if row.sent_amount else "",
                    amount_text(row.fee_asset, row.fee_amount),
                    row.fee_asset if row.fee_amount else "",
                    "",
                ]
            )
    else:
        writer.writerow(CSV_HEADER)
        for row in rows:
            writer.writerow(
                [
                    _utc(row.at).isoformat().replace("+00:00", "Z"),
                    row.kind,
                    row.source,
                    row.symbol,
                    amount_text(row.sent_asset, row.sent_amount),
                    row.sent_asset if row.sent_amount else "",
                    amount_text(row.received_asset, row.received_amount),
                    row.received_asset if row.received_amount else "",
                    amount_text(row.fee_asset, row.fee_amount),
                    row.fee_asset if row.fee_amount else "",
                    "" if row.price_usdt is None else f"{row.price_usdt.normalize():f}",
                    row.reference,
                ]
            )
    return out.getvalue()
