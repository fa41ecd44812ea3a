"""A trader's history as ``core.Event``: read from their own ledger transfers (every posted
movement of their accounts, so the quantities are the ledger's balances to the last unit)
and from their option orders and exercises (the contracts themselves are not ledger money).

How each ledger movement becomes events:

* a spot fill on our book (``spot:<order>:<batch>:post`` and ``:recv``), a smart-routed
  child at a venue (``venue:<child>:post`` and ``:recv``) and an RFQ (``rfq:<quote>:quote``
  and ``:base``): the trader gave one asset and got the other. A buy acquires the base at the
  USDT it spent (the fee is already off what was received, so it is in the cost); a sell
  disposes of the base for the USDT received net of the fee. The USDT side is an event too.
* a deposit (or demo faucet): an acquisition at its USDT value when it was credited
  (``price_at``), and money invested.
* a withdrawal: a disposal at its USDT value when it was paid out, and money taken out; its
  fee a disposal for nothing (a loss). Held withdrawals change nothing until they are paid.
* an option premium paid or received and an exercise payout: USDT out or in. The series side
  comes from the option orders (buy to open, sell to close, even for nothing) and exercises
  (paid its intrinsic value, or expired for nothing), one series being one asset.
* any other movement of the trader's money: in at its value (``transfer_in``) or out
  (``transfer_out``), counted as money invested or taken out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q

from ledger.models import AccountKind, LedgerAccount, Transfer, TransferKind
from marketdata.models import Candle, CandleSource, IndexPrint
from orders.models import SpotOrder
from orders.options.models import ExerciseOutcome, OptionExercise, OptionOrder, OptionSide

from . import core

TRADE_CODES = frozenset({"spot_fill", "venue_fill", "rfq_trade"})
DEPOSIT_CODES = frozenset({"deposit", "faucet"})
OPTION_CASH_CODES = frozenset({"option_open", "option_close", "option_exercise"})
# ledger codes whose movements are not money brought in or taken out (the rest are)
NOT_FLOW_CODES = TRADE_CODES | OPTION_CASH_CODES | {"withdrawal_fee"}
_SOURCES = {"spot": "book", "venue": "smart", "rfq": "rfq"}
_MINUTE = timedelta(minutes=1)
_LEGS_SPREAD = timedelta(minutes=1)

# (id, code, asset, amount, debit_account_id, credit_account_id, created_at)
TransferRow = tuple[str, str, str, Decimal, int, int, datetime]
_ROW_FIELDS = ("id", "code", "asset", "amount", "debit_account_id", "credit_account_id", "created_at")


def history_of(*, user_id: int, until: datetime | None = None) -> list[core.Event]:
    """Every event of the trader's history up to ``until`` (included; all when None), in
    replay order (``core.Event.key``)."""
    accounts = accounts_of(user_id=user_id)
    # The legs of one trade are written in one transaction but stamped one by one: read a
    # little past ``until`` so that a trade stamped across it is whole, then cut by the
    # trade's time (its first leg's).
    rows = transfers_of(accounts=accounts, until=None if until is None else until + _LEGS_SPREAD)
    events = events_from_transfers(rows, accounts=accounts, user_id=user_id)
    if until is not None:
        events = [event for event in events if event.at <= until]
    events += option_events(user_id=user_id, until=until)
    events.sort(key=lambda event: event.key)
    return events


# --- the ledger ------------------------------------------------------------------------------------------


def accounts_of(*, user_id: int) -> dict[int, str]:
    """The trader's ledger accounts: id -> asset."""
    return dict(LedgerAccount.objects.filter(kind=AccountKind.USER, user_id=user_id).values_list("pk", "asset"))


def transfers_of(
    *, accounts: Iterable[int], after: tuple[datetime, str] | None = None, until: datetime | None = None
) -> list[TransferRow]:
    """The posted movements of ``accounts`` (posts of holds included, holds and voids not:
    they change no balance), by (created_at, id); only those after ``after`` (such a pair)."""
    ids = list(accounts)
    if not ids:
        return []
    qs = Transfer.objects.filter(
        Q(debit_account_id__in=ids) | Q(credit_account_id__in=ids),
        kind__in=(TransferKind.POSTED, TransferKind.POST_PENDING),
    )
    if after is not None:
        # a plain range on created_at, which the accounts' (account, created_at) indexes
        # serve; the ties at that instant are sorted out here
        qs = qs.filter(created_at__gte=after[0])
    if until is not None:
        qs = qs.filter(created_at__lte=until)
    rows = list(qs.order_by("created_at", "id").values_list(*_ROW_FIELDS))
    if after is not None:
        rows = [row for row in rows if (row[6], row[0]) > after]
    return rows


def events_from_transfers(
    rows: list[TransferRow], *, accounts: dict[int, str], user_id: int, smart: set[int] | None = None, prices=None
) -> list[core.Event]:
    """The events of ``rows`` (transfers of the trader's ``accounts``; a trade's legs all
    in ``rows``), grouped by what caused them. A reader of many traders at once passes what
    it read for all of them: ``smart`` (the spot orders a smart order sent to our book) and
    ``prices`` (``{(asset, at): price_at}``, completed here when one is missing)."""
    groups: dict[str, list[TransferRow]] = defaultdict(list)
    for row in rows:
        code = row[1]
        groups[row[0].rsplit(":", 1)[0] if code in TRADE_CODES else row[0]].append(row)
    if smart is None:
        smart = _smart_children(user_id=user_id, rows=rows)
    events: list[core.Event] = []
    prices: dict[tuple[str, datetime], Decimal | None] = {} if prices is None else prices
    for group, legs in groups.items():
        code = legs[0][1]
        at = min(leg[6] for leg in legs)
        if code in TRADE_CODES:
            events += _trade(group, legs, at=at, accounts=accounts, smart=smart)
            continue
        [leg] = legs
        transfer_id, _, asset, amount, _, credit, _ = leg
        incoming = credit in accounts
        quantity = amount if incoming else -amount
        if code in OPTION_CASH_CODES:
            events.append(core.Event(at, core.CASH, quantity, amount, code, "option", transfer_id))
        elif code == "withdrawal_fee":
            events.append(core.Event(at, asset, quantity, Decimal(0), "fee", "wallet", transfer_id))
        else:
            if code in DEPOSIT_CODES and incoming:
                kind = "deposit"
            elif code == "withdrawal" and not incoming:
                kind = "withdrawal"
            else:
                kind = "transfer_in" if incoming else "transfer_out"
            value = _value(asset, amount, at, prices)
            events.append(core.Event(at, asset, quantity, value, kind, "wallet", transfer_id))
    return events


def _trade(group: str, legs: list[TransferRow], *, at, accounts, smart) -> list[core.Event]:
    net: dict[str, Decimal] = defaultdict(Decimal)
    for _, _, asset, amount, _, credit, _ in legs:
        net[asset] += amount if credit in accounts else -amount
    kind_of_source = group.split(":", 1)[0]
    source = _SOURCES.get(kind_of_source, kind_of_source)
    if source == "book" and _order_id(group) in smart:
        source = "smart"
    paid = {asset: -amount for asset, amount in net.items() if amount < 0}
    got = {asset: amount for asset, amount in net.items() if amount > 0}
    events = []
    if core.CASH in paid:  # a buy: what came in cost the USDT that went out
        cost = paid[core.CASH]
        for asset, amount in got.items():
            events.append(core.Event(at, asset, amount, cost, "buy", source, group))
        events.append(core.Event(at, core.CASH, -cost, cost if got else Decimal(0), "buy", source, group))
    elif core.CASH in got:  # a sell: what went out brought the USDT that came in
        proceeds = got[core.CASH]
        for asset, amount in paid.items():
            events.append(core.Event(at, asset, -amount, proceeds, "sell", source, group))
        events.append(core.Event(at, core.CASH, proceeds, proceeds if paid else Decimal(0), "sell", source, group))
    else:  # nothing came back (the fee took it all): what went out was lost
        for asset, amount in paid.items():
            events.append(core.Event(at, asset, -amount, Decimal(0), "sell", source, group))
    return events


def _order_id(group: str) -> int:
    return int(group.split(":")[1])


def _smart_children(*, user_id: int, rows: list[TransferRow]) -> set[int]:
    """The spot orders among ``rows``' fills that a smart order sent to our book."""
    orders = [_order_id(row[0]) for row in rows if row[1] == "spot_fill" and row[0].startswith("spot:")]
    if not orders:
        return set()
    children = SpotOrder.objects.filter(user_id=user_id, parent__isnull=False, pk__gte=min(orders))
    return set(children.values_list("pk", flat=True))


def _value(asset: str, amount: Decimal, at: datetime, prices: dict) -> Decimal:
    if asset == core.CASH:
        return amount
    if (asset, at) not in prices:
        prices[(asset, at)] = price_at(asset=asset, at=at)
    price = prices[(asset, at)]
    # No price ever recorded for the asset (a fresh installation): the amount is booked at
    # no cost rather than guessed.
    return core.worth(amount, price) if price is not None else Decimal(0)


# --- options -----------------------------------------------------------------------------------------------


def option_events(
    *, user_id: int, after_order: int = 0, after_exercise: int = 0, until: datetime | None = None
) -> list[core.Event]:
    """The series side of the trader's option orders and exercises (ids above the ``after_``
    ones): a buy acquires contracts at its premium, a sell disposes of them for what it paid
    (possibly nothing), expiry disposes of what was left for its payout (nothing when it
    expired worthless)."""
    orders = OptionOrder.objects.filter(user_id=user_id, pk__gt=after_order)
    exercises = OptionExercise.objects.filter(user_id=user_id, pk__gt=after_exercise)
    if until is not None:
        orders, exercises = orders.filter(created_at__lte=until), exercises.filter(created_at__lte=until)
    return [event for _, event in _option_events(orders, exercises)]


def option_events_of(*, user_ids, until: datetime) -> dict[int, list[core.Event]]:
    """``option_events`` of many traders up to ``until``, in two queries."""
    ids = list(user_ids)
    orders = OptionOrder.objects.filter(user_id__in=ids, created_at__lte=until)
    exercises = OptionExercise.objects.filter(user_id__in=ids, created_at__lte=until)
    found: dict[int, list[core.Event]] = defaultdict(list)
    for user_id, event in _option_events(orders, exercises):
        found[user_id].append(event)
    return found


def _option_events(orders, exercises) -> list[tuple[int, core.Event]]:
    events = []
    for user_id, pk, series, side, contracts, total, created_at in orders.values_list(
        "user_id", "pk", "series", "side", "contracts", "total_usdt", "created_at"
    ):
        buy = side == OptionSide.BUY
        events.append(
            (
                user_id,
                core.Event(
                    created_at,
                    series,
                    contracts if buy else -contracts,
                    total,
                    "option_open" if buy else "option_close",
                    "option",
                    f"option_order:{pk}",
                ),
            )
        )
    for user_id, pk, series, outcome, contracts, payout, created_at in exercises.values_list(
        "user_id", "pk", "series", "outcome", "contracts", "payout_usdt", "created_at"
    ):
        kind = "option_exercise" if outcome == ExerciseOutcome.EXERCISED else "option_expiry"
        event = core.Event(created_at, series, -contracts, payout, kind, "option", f"option_exercise:{pk}")
        events.append((user_id, event))
    return events


# --- prices in the past -----------------------------------------------------------------------------------


def price_at(*, asset: str, at: datetime) -> Decimal | None:
    """The asset's USDT price at ``at``: the latest of the last index print at or before it
    and the index candle of that minute (its open, or the close of the last finished
    minute); the first price after ``at`` when none is older; None when the asset has no
    price at all. USDT is one."""
    if asset == core.CASH:
        return Decimal(1)
    candidates = []
    printed = (
        IndexPrint.objects.filter(underlying=asset, stale=False, price__isnull=False, ts__lte=at)
        .order_by("-ts")
        .values_list("ts", "price")
        .first()
    )
    if printed is not None:
        candidates.append(printed)
    candles = Candle.objects.filter(symbol=f"{asset}-USDT", source=CandleSource.INDEX, interval="1m")
    bar = candles.filter(open_time__lte=at).order_by("-open_time").values_list("open_time", "open", "close").first()
    if bar is not None:
        opened, open_price, close_price = bar
        candidates.append((opened + _MINUTE, close_price) if opened + _MINUTE <= at else (opened, open_price))
    if candidates:
        return max(candidates, key=lambda candidate: candidate[0])[1]
    later = []
    printed = (
        IndexPrint.objects.filter(underlying=asset, stale=False, price__isnull=False, ts__gt=at)
        .order_by("ts")
        .values_list("ts", "price")
        .first()
    )
    if printed is not None:
        later.append(printed)
    bar = candles.filter(open_time__gt=at).order_by("open_time").values_list("open_time", "open").first()
    if bar is not None:
        later.append(bar)
    return min(later, key=lambda candidate: candidate[0])[1] if later else None
