"""GET /api/v1/exports/transactions: the trader's history as our CSV and in Koinly's universal
and CoinTracker's import formats, with their exact headers; every row set reconciles to the
ledger asset by asset; bad input refused."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketdata.services import instruments_sync
from orders.options.services import options_expire, options_order_place
from portfolio import exports
from tests.orders.conftest import INDEX, pick_series, print_index
from tests.orders.spot.conftest import client_for
from tests.portfolio import trading_world

D = Decimal
KOINLY = (
    "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,Fee Currency,"
    "Net Worth Amount,Net Worth Currency,Label,Description,TxHash"
)
COINTRACKER = "Date,Received Quantity,Received Currency,Sent Quantity,Sent Currency,Fee Amount,Fee Currency,Tag"


@pytest.fixture
def markets(db):
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


@pytest.fixture
def world(settings, markets, eager_tasks):
    started = timezone.now() - timedelta(seconds=1)
    built = trading_world.build(settings)
    built["start"], built["end"] = started, timezone.now() + timedelta(seconds=1)
    return built


def download(user, **params):
    response = client_for(user).get("/api/v1/exports/transactions", params)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="transactions-')
    text = response.content.decode()
    return text, list(csv.DictReader(io.StringIO(text)))


def window(world) -> dict:
    return {"start": world["start"].isoformat(), "end": world["end"].isoformat()}


def net_of(rows, sent, sent_ccy, received, received_ccy, fee, fee_ccy) -> dict:
    moved: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        if row[received]:
            moved[row[received_ccy]] += D(row[received])
        if row[sent]:
            moved[row[sent_ccy]] -= D(row[sent])
        if row[fee]:
            moved[row[fee_ccy]] -= D(row[fee])
    return {asset: amount for asset, amount in moved.items() if amount}


def ledger(world, user) -> dict:
    change = exports.ledger_change(user=user, start=world["start"], end=world["end"])
    return {asset: amount for asset, amount in change.items() if amount}


def positions(user) -> dict:
    from orders.options.models import OptionPosition

    return {p.series: p.contracts for p in OptionPosition.objects.filter(user=user) if p.contracts}


@pytest.mark.django_db(transaction=True)
def test_every_format_reconciles_to_the_ledger(world):
    for who in ("bob", "alice", "maker"):
        user = world[who]
        expected = ledger(world, user)
        expected.update(positions(user))  # the option contracts still held, all bought in the window
        _, ours = download(user, format="csv", **window(world))
        assert (
            net_of(ours, "sent_amount", "sent_asset", "received_amount", "received_asset", "fee_amount", "fee_asset")
            == expected
        ), who
        text, koinly = download(user, format="koinly", **window(world))
        assert text.splitlines()[0] == KOINLY
        assert (
            net_of(
                koinly,
                "Sent Amount",
                "Sent Currency",
                "Received Amount",
                "Received Currency",
                "Fee Amount",
                "Fee Currency",
            )
            == expected
        ), who
        text, cointracker = download(user, format="cointracker", **window(world))
        assert text.splitlines()[0] == COINTRACKER
        assert (
            net_of(
                cointracker,
                "Sent Quantity",
                "Sent Currency",
                "Received Quantity",
                "Received Currency",
                "Fee Amount",
                "Fee Currency",
            )
            == expected
        ), who
        assert len(ours) == len(koinly) == len(cointracker)


@pytest.mark.django_db(transaction=True)
def test_bobs_rows_say_what_happened(world):
    bob = world["bob"]
    _, rows = download(bob, **window(world))  # csv when no format is given
    kinds = [(row["type"], row["source"]) for row in rows]
    assert kinds.count(("deposit", "wallet")) == 3  # USDT, BTC, ETH
    assert ("buy", "book") in kinds and ("sell", "book") in kinds
    assert ("buy", "smart") in kinds and ("buy", "rfq") in kinds
    assert [k for k in kinds if k[0].startswith("option_")] == [("option_buy", "option"), ("option_sell", "option")]
    taker_buy = next(r for r in rows if r["type"] == "buy" and r["source"] == "book")
    assert (taker_buy["sent_amount"], taker_buy["sent_asset"]) == ("13000.000000", "USDT")
    assert (taker_buy["received_amount"], taker_buy["received_asset"]) == ("0.20000000", "BTC")
    assert (taker_buy["fee_amount"], taker_buy["fee_asset"], taker_buy["price_usdt"]) == ("0.00040000", "BTC", "65000")
    withdrawal = next(r for r in rows if r["type"] == "withdrawal")
    assert (withdrawal["sent_amount"], withdrawal["fee_amount"], withdrawal["fee_asset"]) == (
        "1.50000000",
        "0.00300000",
        "ETH",
    )
    venue = next(r for r in rows if r["reference"].startswith("venue:"))
    assert venue["source"] == "smart" and D(venue["fee_amount"]) > 0
    times = [datetime.fromisoformat(r["time"].replace("Z", "+00:00")) for r in rows]
    assert times == sorted(times)


@pytest.mark.django_db(transaction=True)
def test_the_tax_formats_write_dates_as_their_tools_read_them(world):
    _, koinly = download(world["bob"], format="koinly", **window(world))
    _, cointracker = download(world["bob"], format="cointracker", **window(world))
    first_k, first_c = koinly[0], cointracker[0]
    when = datetime.strptime(first_k["Date"], "%Y-%m-%d %H:%M:%S UTC")
    assert datetime.strptime(first_c["Date"], "%m/%d/%Y %H:%M:%S") == when
    assert abs(when - world["start"].replace(tzinfo=None)) < timedelta(minutes=1)
    deposit = next(r for r in koinly if r["Received Currency"] == "ETH" and not r["Sent Amount"])
    assert deposit["Received Amount"] == "3.00000000" and deposit["Description"] == "Deposit"
    assert all(r["TxHash"] for r in koinly)  # every row names its platform reference
    assert {r["Tag"] for r in cointracker} == {""}


@pytest.mark.django_db(transaction=True)
def test_a_period_holds_only_its_rows(world):
    bob = world["bob"]
    _, everything = download(bob, **window(world))
    # cut at the RFQ block: both its legs are at or after its time
    rfq = next(r for r in everything if r["source"] == "rfq")
    middle = datetime.fromisoformat(rfq["time"].replace("Z", "+00:00"))
    _, before = download(bob, start=world["start"].isoformat(), end=middle.isoformat())
    _, after = download(bob, start=middle.isoformat(), end=world["end"].isoformat())
    assert len(before) + len(after) == len(everything)
    assert before + after == everything
    for part, start, end in ((before, world["start"], middle), (after, middle, world["end"])):
        expected = {a: v for a, v in exports.ledger_change(user=bob, start=start, end=end).items() if v}
        got = net_of(part, "sent_amount", "sent_asset", "received_amount", "received_asset", "fee_amount", "fee_asset")
        assert {a: v for a, v in got.items() if a in ("USDT", "BTC", "ETH")} == expected


@pytest.mark.django_db(transaction=True)
def test_exercise_and_expiry_are_disposals_of_the_contracts(markets):
    from tests.orders.conftest import trader

    start = timezone.now() - timedelta(seconds=1)
    holder = trader()
    call, put = pick_series("BTC", "C"), pick_series("BTC", "P", offset=-1)
    options_order_place(user=holder, series=call.symbol, side="buy", contracts="1", limit_price_usdt="999999")
    options_order_place(user=holder, series=put.symbol, side="buy", contracts="2", limit_price_usdt="999999")
    settlement = call.strike + D("1000")
    print_index("BTC", settlement, ts=call.expiry - timedelta(minutes=31))
    options_expire(now=call.expiry + timedelta(seconds=5))
    end = timezone.now() + timedelta(seconds=1)
    _, rows = download(holder, start=start.isoformat(), end=end.isoformat())
    exercised = next(r for r in rows if r["type"] == "option_exercise")
    assert (exercised["symbol"], exercised["sent_amount"], exercised["received_amount"]) == (
        call.symbol,
        "1",
        "1000.000000",
    )
    expired = next(r for r in rows if r["type"] == "option_expiry")
    assert (expired["sent_amount"], expired["sent_asset"], expired["received_amount"]) == ("2", put.symbol, "")
    moved = net_of(rows, "sent_amount", "sent_asset", "received_amount", "received_asset", "fee_amount", "fee_asset")
    assert moved == {a: v for a, v in exports.ledger_change(user=holder, start=start, end=end).items() if v}


@pytest.mark.django_db
def test_bad_input_is_refused_in_the_error_format(user):
    client = client_for(user)
    for params, field in (
        ({"format": "xls"}, "format"),
        ({"format": "pdf"}, "format"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end"),
        ({"start": "2020-01-01", "end": "2025-06-01"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-45"}, "end"),
    ):
        response = client.get("/api/v1/exports/transactions", params)
        assert response.status_code == 400, (params, response.content)
        body = response.json()
        assert body["error"]["code"] == "validation_error" and field in body["error"]["fields"], params
    assert client_for(None).get("/api/v1/exports/transactions").status_code == 401
