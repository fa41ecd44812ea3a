"""Rebalancing through the API, against PostgreSQL and real spot order entry.

* the preview proposes what the maths does for the trader's balances and live prices, and
  writes nothing; bad targets and tolerances answer 400 with the field named, never a write;
* placing: every order goes through spot order entry (risk checks and holds), the sells trade
  before the buys spend their USDT (engine runners working beside the test, as in stack mode),
  and the ledger afterwards holds exactly what the fills say;
* one idempotent batch: a replayed client_id enters nothing new; other targets are a 409;
* a refusal of order entry on the first order is the API's answer and nothing is written; a
  refusal later ends the batch partial with the refusal kept; a halted market refuses the
  whole batch before it starts;
* a batch whose request died while placing is finished by the next replay;
* saved targets and the page's suggestion.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from ledger.models import Transfer
from ledger.selectors import balance_of
from orders.models import SpotOrder, SpotTrade
from orders.spot.services import order_request, spot_order_place
from portfolio import rebalance as core
from portfolio import rebalance_selectors
from portfolio.models import RebalanceBatch, RebalanceStatus, RebalanceTargets
from portfolio.selectors import prices_now
from portfolio.services import request_fingerprint, targets_json
from risk import services as risk_services
from tests.orders.conftest import INDEX, IndexTicker, client_for, print_index
from tests.orders.spot.conftest import Engine, funded_trader
from tests.orders.spot.conftest import markets as spot_markets  # noqa: F401  (a fixture)
from tests.risk.helpers import limit_set

D = Decimal
TAKER = D("0.002")
TOLERANCE_HINT = "Between 0 and 0.5 (0.02 is 2 percentage points)."


def written() -> tuple[int, int, int, int]:
    return (
        SpotOrder.objects.count(),
        Transfer.objects.count(),
        RebalanceBatch.objects.count(),
        RebalanceTargets.objects.count(),
    )


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()["error"]
    assert body["code"] == code, body
    return body


def preview(client, targets, **extra):
    return client.post("/api/v1/portfolio/rebalance/preview", {"targets": targets, **extra}, format="json")


def place(client, targets, client_id="batch-1", **extra):
    return client.post(
        "/api/v1/portfolio/rebalance", {"targets": targets, "client_id": client_id, **extra}, format="json"
    )


# --- the preview and bad input (no engine needed) -------------------------------------------------------

pytestmark_db = pytest.mark.django_db
# every test lists the spot pairs at a fresh index first
pytestmark = pytest.mark.usefixtures("spot_markets")


@pytestmark_db
def test_the_preview_is_the_plan_for_the_balances_at_live_prices_and_writes_nothing():
    trader = funded_trader(usdt="10000", btc="1", eth="0")
    client = client_for(trader)
    before = written()
    response = preview(client, {"BTC": "0.5", "ETH": "0.2", "USDT": "0.3"}, tolerance="0.01")
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert written() == before

    # the same plan, from the ledger's balances and the prices the portfolio shows
    prices = prices_now()
    assert prices["BTC"].price == INDEX["BTC"]  # no trade yet: the index
    btc, eth = INDEX["BTC"], INDEX["ETH"]
    value = D("10000") + btc
    assert D(body["value_usdt"]) == value
    # 1 BTC is 86.7 % against a 50 % target
    assert D(body["drift_before"]) == (btc / value - D("0.5")).quantize(D("0.000001"), rounding="ROUND_CEILING")
    assert body["tolerance"] == "0.01" and body["fee_rate"] == "0.002"
    assert [(o["symbol"], o["side"]) for o in body["orders"]] == [("BTC-USDT", "sell"), ("ETH-USDT", "buy")]
    sell, buy = body["orders"]
    plan = core.plan(
        holdings=core.Holdings.of({"USDT": D("10000"), "BTC": D("1")}),
        markets={
            "BTC": core.Market("BTC-USDT", "BTC", btc, btc, btc, D("0.01"), D("0.00001"), D("10"), D("20")),
            "ETH": core.Market("ETH-USDT", "ETH", eth, eth, eth, D("0.01"), D("0.0001"), D("10"), D("400")),
        },
        targets={"BTC": D("0.5"), "ETH": D("0.2"), "USDT": D("0.3")},
        tolerance=D("0.01"),
        fee=TAKER,
    )
    assert [D(sell["quantity"]), D(buy["quantity"])] == [o.quantity for o in plan.orders]
    assert D(sell["est_price"]) == btc and D(buy["est_price"]) == eth  # no book yet: the live price
    assert sell["quote_quantity"] is None and sell["fee_asset"] == "USDT"
    assert D(sell["est_fee"]) == (D(sell["quantity"]) * btc * TAKER).quantize(D("0.000001"))
    assert buy["fee_asset"] == "ETH" and D(buy["est_fee"]) == D(buy["quantity"]) * TAKER
    assert D(buy["quote_quantity"]) >= D(buy["quantity"]) * eth
    assert D(body["drift_after"]) <= D("0.01")
    assert body["within_tolerance"] is True
    assert set(body["weights_after"]) == {"BTC", "ETH", "USDT"}


@pytestmark_db
def test_estimated_prices_are_on_the_tick_and_on_the_traders_side():
    # no book yet: the estimates come from the index, which is between two ticks
    print_index("BTC", D("65000.125"))
    buyer, seller = funded_trader(usdt="10000", btc="0"), funded_trader(usdt="0", btc="1")
    [buy] = preview(client_for(buyer), {"BTC": "0.5", "USDT": "0.5"}).json()["orders"]
    [sell] = preview(client_for(seller), {"BTC": "0.5", "USDT": "0.5"}).json()["orders"]
    assert (buy["side"], buy["est_price"]) == ("buy", "65000.13")
    assert (sell["side"], sell["est_price"]) == ("sell", "65000.12")


@pytestmark_db
def test_within_tolerance_the_preview_proposes_nothing():
    trader = funded_trader(usdt=str(INDEX["BTC"]), btc="1")
    body = preview(client_for(trader), {"BTC": "0.5", "USDT": "0.5"}).json()
    assert body["orders"] == [] and D(body["drift_before"]) == 0 and body["tolerance"] == "0.02"


@pytestmark_db
@pytest.mark.parametrize(
    "payload, fields",
    [
        ({"targets": {"BTC": "0.5", "USDT": "0.49"}}, {"targets": ["The weights add up to 0.99, not 1."]}),
        ({"targets": {"BTC": "0.5", "DOGE": "0.5"}}, {"targets": {"DOGE": ["Unknown asset; one of USDT, BTC, ETH."]}}),
        ({"targets": {"BTC": "1.5", "USDT": "-0.5"}}, {"targets": {"BTC": ["At most 1."]}}),
        ({"targets": {"BTC": "1.2", "USDT": "-0.2"}, "tolerance": "0.01"}, {"targets": {"BTC": ["At most 1."]}}),
        ({"targets": {"BTC": "-0.5", "USDT": "1.5"}}, {"targets": {"USDT": ["At most 1."]}}),
        (
            {"targets": {"BTC": "-0.25", "ETH": "0.25", "USDT": "1"}},
            {"targets": {"BTC": ["A weight cannot be negative."]}},
        ),
        (
            {"targets": {"BTC": 0.5, "USDT": 0.5}},
            {"targets": {"BTC": ['Use a decimal string, e.g. "0.5".'], "USDT": ['Use a decimal string, e.g. "0.5".']}},
        ),
        ({"targets": {"BTC": "half", "USDT": "0.5"}}, None),
        ({"targets": {}}, {"targets": ["Give each asset's weight."]}),
        ({"targets": ["BTC"]}, None),
        ({}, None),
        ({"targets": {"BTC": "1"}, "tolerance": "0.6"}, {"tolerance": [TOLERANCE_HINT]}),
        ({"targets": {"BTC": "1"}, "tolerance": "-0.01"}, {"tolerance": [TOLERANCE_HINT]}),
        ({"targets": {"BTC": "1"}, "tolerance": "two"}, None),
    ],
)
def test_bad_targets_and_tolerances_are_400_naming_the_field(payload, fields):
    trader = funded_trader(usdt="1000", btc="0.1")
    client = client_for(trader)
    before = written()
    for response in (
        client.post("/api/v1/portfolio/rebalance/preview", payload, format="json"),
        client.post("/api/v1/portfolio/rebalance", {**payload, "client_id": "bad-1"}, format="json"),
        client.put("/api/v1/portfolio/targets", payload, format="json"),
    ):
        body = refused(response, 400, "validation_error")
        if fields is not None:
            assert body["fields"] == fields
        else:
            assert set(body["fields"]) <= {"targets", "tolerance"} and body["fields"]
    assert written() == before


@pytestmark_db
def test_placing_needs_a_client_id():
    client = client_for(funded_trader())
    for client_id in (None, "", "has space", "x" * 65):
        payload = {"targets": {"USDT": "1"}} | ({} if client_id is None else {"client_id": client_id})
        body = refused(client.post("/api/v1/portfolio/rebalance", payload, format="json"), 400, "validation_error")
        assert list(body["fields"]) == ["client_id"]


@pytestmark_db
def test_a_stale_price_refuses_the_preview():
    from marketdata.models import IndexPrint

    IndexPrint.objects.all().update(ts=timezone.now() - timedelta(minutes=5))
    body = refused(preview(client_for(funded_trader()), {"BTC": "0.5", "USDT": "0.5"}), 503, "index_stale")
    assert "BTC" in body["message"]


@pytestmark_db
def test_signed_out_is_401(api):
    assert api.post("/api/v1/portfolio/rebalance/preview", {"targets": {"USDT": "1"}}, format="json").status_code == 401
    assert api.get("/api/v1/portfolio/suggestions").status_code == 401


# --- refusals of order entry ---------------------------------------------------------------------------


@pytest.fixture
def short_wait(settings):
    """No engine runs in these tests: the batch stops waiting for its orders to trade soon."""
    settings.PORTFOLIO_REBALANCE_WAIT_SECONDS = 0.2


@pytestmark_db
def test_a_risk_refusal_of_the_first_order_is_the_answer_and_nothing_is_written(short_wait):
    trader = funded_trader(usdt="0", btc="1")
    limit_set("max_open_orders", 0, user=trader)
    client = client_for(trader)
    before = written()
    body = refused(place(client, {"BTC": "0.5", "USDT": "0.5"}), 409, "max_open_orders")
    assert body["fields"]["limit"] == ["max_open_orders"]
    assert written() == before  # no batch, no order, no hold, no saved targets
    # the same client_id is free again once the limit allows it
    limit_set("max_open_orders", 10, user=trader)
    assert place(client, {"BTC": "0.5", "USDT": "0.5"}).status_code == 201


@pytestmark_db
def test_a_halted_market_refuses_the_whole_batch_before_it_starts(staff):
    trader = funded_trader(usdt="0", btc="1", eth="10")
    risk_services.trading_state_set(
        actor=staff, scope="symbol", target="ETH-USDT", state="halted", reason="incident", cancel_open_orders=False
    )
    before = written()
    # the BTC sell could go, but the ETH sell could not: neither goes
    body = refused(place(client_for(trader), {"USDT": "1"}), 403, "trading_halted")
    assert "ETH-USDT" in body["message"]
    assert written() == before


@pytestmark_db
def test_a_refusal_after_the_first_order_ends_the_batch_partial(short_wait):
    trader = funded_trader(usdt="0", btc="0.1", eth="2")
    # one order now, the next one in a thousand seconds
    limit_set("order_rate", "0.001", user=trader)
    limit_set("order_burst", "1", user=trader)
    client = client_for(trader)
    response = place(client, {"USDT": "1"}, client_id="two-sells")
    assert response.status_code == 201, response.content[:500]
    batch = response.json()
    assert batch["status"] == "partial"
    first, second = batch["orders"]
    assert (first["symbol"], first["state"]) == ("BTC-USDT", "placed")
    assert first["order"]["id"] == SpotOrder.objects.get(user=trader).pk
    assert (second["symbol"], second["state"]) == ("ETH-USDT", "refused")
    assert second["error"]["code"] == batch["error"]["code"] == "rate_limited"
    assert second["order"] is None
    # the order that went in holds its BTC like any order
    assert balance_of(user=trader, asset="BTC").held == D("0.1")
    # a replay answers the same batch
    again = place(client, {"USDT": "1"}, client_id="two-sells")
    assert again.status_code == 200 and again.json()["id"] == batch["id"] and again.json()["status"] == "partial"
    assert SpotOrder.objects.filter(user=trader).count() == 1


@pytestmark_db
def test_buys_wait_for_the_sells_and_are_not_entered_when_the_sells_have_not_traded(short_wait):
    # no engine runs here: the sell is entered but never trades, so the buy never goes
    trader = funded_trader(usdt="0", btc="0.5", eth="0")
    response = place(client_for(trader), {"BTC": "0.5", "ETH": "0.5"}, client_id="stuck")
    assert response.status_code == 201, response.content[:500]
    batch = response.json()
    assert batch["status"] == "partial" and batch["error"]["code"] == "sells_pending"
    assert [(o["side"], o["state"]) for o in batch["orders"]] == [("sell", "placed"), ("buy", "skipped")]
    assert [o.side for o in SpotOrder.objects.filter(user=trader)] == ["sell"]
    assert balance_of(user=trader, asset="USDT").total == 0


# --- placing, with engines working beside the test -----------------------------------------------------


class Engines:
    """The BTC-USDT and ETH-USDT runners matching in a thread of their own, as the engine
    processes of stack mode do."""

    def __init__(self):
        self.engines = [Engine("BTC-USDT"), Engine("ETH-USDT")]
        self.stop, self.errors = threading.Event(), []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        try:
            while not self.stop.is_set():
                for engine in self.engines:
                    engine.run()
                self.stop.wait(0.005)
        except Exception as exc:  # reported at the end
            self.errors.append(exc)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        assert not self.errors, self.errors


def quote(user, symbol, side, price, quantity):
    order, _ = spot_order_place(
        user=user,
        request=order_request(symbol=symbol, side=side, type="limit", price=price, quantity=quantity),
    )
    return order


@pytest.fixture
def book(transactional_db, request):
    """Both markets running, with a maker's quotes a little either side of the index."""
    request.getfixturevalue("spot_markets")
    maker = funded_trader(usdt="1000000", btc="20", eth="300")
    with IndexTicker(), Engines() as engines:
        quote(maker, "BTC-USDT", "buy", "64900.00", "5")
        quote(maker, "BTC-USDT", "sell", "65100.00", "5")
        quote(maker, "ETH-USDT", "buy", "3390.00", "50")
        quote(maker, "ETH-USDT", "sell", "3410.00", "50")
        deadline = timezone.now() + timedelta(seconds=10)
        while SpotOrder.objects.filter(user=maker, status="open").count() < 4:
            assert timezone.now() < deadline, "the maker's quotes did not rest"
        yield engines


def test_sells_trade_before_the_buys_spend_their_usdt_and_the_ledger_matches_the_fills(book):
    # all in BTC, no USDT at all: the ETH buy can only spend what the BTC sell fetched
    trader = funded_trader(usdt="0", btc="0.5", eth="0")
    client = client_for(trader)
    targets = {"BTC": "0.45", "ETH": "0.45", "USDT": "0.1"}
    shown = preview(client, targets, tolerance="0.01").json()
    assert [(o["side"], o["est_price"]) for o in shown["orders"]] == [("sell", "64900"), ("buy", "3410")]

    response = place(client, targets, client_id="first", tolerance="0.01")
    assert response.status_code == 201, response.content[:800]
    batch = response.json()
    assert batch["status"] == "placed", batch
    assert [(o["side"], o["quantity"]) for o in batch["orders"]] == [
        (o["side"], o["quantity"]) for o in shown["orders"]
    ]
    sell, buy = (SpotOrder.objects.get(pk=o["order"]["id"]) for o in batch["orders"])
    assert (sell.side, sell.type, sell.status, sell.client_order_id) == (
        "sell",
        "market",
        "filled",
        f"rebalance:{batch['id']}:0",
    )
    assert (buy.side, buy.type, buy.status) == ("buy", "market", "filled")
    assert buy.quote_quantity == D(batch["orders"][1]["quote_quantity"])
    assert sell.filled_quantity == D(shown["orders"][0]["quantity"])
    assert buy.filled_quantity == D(shown["orders"][1]["quantity"])
    # the sell had traded before the buy was entered
    sell_trade = SpotTrade.objects.get(taker_order=sell)
    assert sell_trade.created_at <= buy.created_at

    # the ledger holds exactly what the fills say (fees from what each received)
    assert balance_of(user=trader, asset="BTC").total == D("0.5") - sell.filled_quantity
    assert balance_of(user=trader, asset="ETH").total == buy.filled_quantity - buy.fees_paid
    assert balance_of(user=trader, asset="USDT").total == sell.filled_quote - sell.fees_paid - buy.filled_quote
    assert balance_of(user=trader, asset="USDT").held == 0

    # back within the tolerance: a new preview proposes nothing
    again = preview(client, targets, tolerance="0.01").json()
    assert D(again["drift_before"]) <= D("0.01"), again
    assert again["orders"] == []
    # and the targets are the trader's now
    assert client.get("/api/v1/portfolio/targets").json()["targets"] == targets


def test_a_buy_spends_what_the_sells_fetched_when_it_is_less_than_estimated(book):
    # the best bid is thin: selling 6 BTC fetches 5 at 64,900 and 1 at 64,000, less than the
    # preview estimated at the best bid; the ETH buy spends what there is, not what was planned
    maker = funded_trader(usdt="1000000", btc="0", eth="300")
    quote(maker, "BTC-USDT", "buy", "64000.00", "5")
    quote(maker, "ETH-USDT", "sell", "3420.00", "200")
    wait = timezone.now() + timedelta(seconds=10)
    while SpotOrder.objects.filter(user=maker, status="open").count() < 2:
        assert timezone.now() < wait, "the quotes did not rest"
    trader = funded_trader(usdt="0", btc="6", eth="0")
    response = place(client_for(trader), {"ETH": "1"}, client_id="thin")
    assert response.status_code == 201, response.content[:800]
    batch = response.json()
    assert batch["status"] == "placed", batch
    sell, buy = (SpotOrder.objects.get(pk=o["order"]["id"]) for o in batch["orders"])
    assert sell.filled_quantity == 6 and sell.filled_quote == 5 * D("64900") + D("64000")
    proceeds = sell.filled_quote - sell.fees_paid
    assert proceeds < D(batch["orders"][0]["est_notional"]) * (1 - TAKER)
    assert buy.quote_quantity == proceeds < D(batch["orders"][1]["quote_quantity"])
    assert balance_of(user=trader, asset="USDT").total == proceeds - buy.filled_quote
    assert balance_of(user=trader, asset="ETH").total == buy.filled_quantity - buy.fees_paid


def test_a_replayed_client_id_places_nothing_new_and_returns_the_same_batch(book):
    trader = funded_trader(usdt="20000", btc="0")
    client = client_for(trader)
    first = place(client, {"BTC": "0.5", "USDT": "0.5"}, client_id="weekly-2026-49")
    assert first.status_code == 201, first.content[:500]
    orders, transfers = SpotOrder.objects.filter(user=trader).count(), Transfer.objects.count()
    assert orders == 1

    again = place(client, {"BTC": "0.5", "USDT": "0.5"}, client_id="weekly-2026-49")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert [o["order"]["id"] for o in again.json()["orders"]] == [o["order"]["id"] for o in first.json()["orders"]]
    assert (SpotOrder.objects.filter(user=trader).count(), Transfer.objects.count()) == (orders, transfers)

    other = place(client, {"BTC": "0.6", "USDT": "0.4"}, client_id="weekly-2026-49")
    assert refused(other, 409, "idempotency_conflict")["fields"] == {"client_id": ["Already used for other targets."]}
    assert SpotOrder.objects.filter(user=trader).count() == orders

    # the batch is listed and readable by its owner only
    listed = client.get("/api/v1/portfolio/rebalance").json()
    assert [b["id"] for b in listed["results"]] == [first.json()["id"]]
    assert client.get(f"/api/v1/portfolio/rebalance/{first.json()['id']}").json()["status"] == "placed"
    stranger = client_for(funded_trader())
    assert stranger.get(f"/api/v1/portfolio/rebalance/{first.json()['id']}").status_code == 404
    assert stranger.get("/api/v1/portfolio/rebalance").json()["results"] == []


def test_a_batch_whose_request_died_while_placing_is_finished_by_the_next_replay(book, settings):
    trader = funded_trader(usdt="0", btc="0.2")
    targets, tolerance = {"BTC": D("0.5"), "USDT": D("0.5")}, D("0.02")
    # what the placing request had stored when it died, before entering any order
    plan = rebalance_selectors.rebalance_preview(user=trader, targets=targets, tolerance=tolerance)
    batch = RebalanceBatch.objects.create(
        user=trader,
        client_id="died",
        request_hash=request_fingerprint(targets, tolerance),
        targets=targets_json(targets),
        tolerance=tolerance,
        value_usdt=plan.value_usdt,
        drift_before=plan.drift_before,
        drift_after=plan.drift_after,
        orders=[{**o.as_json(), "state": "pending", "order_id": None} for o in plan.orders],
    )
    client = client_for(trader)
    # while the request might still be at work, a replay leaves it alone
    young = place(client, {"BTC": "0.5", "USDT": "0.5"}, client_id="died")
    assert young.status_code == 200 and young.json()["status"] == "placing"
    assert not SpotOrder.objects.filter(user=trader).exists()

    RebalanceBatch.objects.filter(pk=batch.pk).update(
        updated_at=timezone.now() - timedelta(seconds=settings.PORTFOLIO_REBALANCE_RESUME_SECONDS + 1)
    )
    finished = place(client, {"BTC": "0.5", "USDT": "0.5"}, client_id="died")
    assert finished.status_code == 200
    assert finished.json()["status"] == RebalanceStatus.PLACED
    [order] = SpotOrder.objects.filter(user=trader)
    assert order.client_order_id == f"rebalance:{batch.pk}:0" and order.status == "filled"
    # and a further replay enters nothing
    assert place(client, {"BTC": "0.5", "USDT": "0.5"}, client_id="died").json()["status"] == "placed"
    assert SpotOrder.objects.filter(user=trader).count() == 1


# --- targets and the suggestion ------------------------------------------------------------------------


@pytestmark_db
def test_saved_targets_and_the_suggestion():
    trader = funded_trader(usdt="1000", btc="1")  # BTC ~98.5 %
    client = client_for(trader)
    advice = client.get("/api/v1/portfolio/suggestions").json()
    assert advice["targets"] is None and advice["drift"] is None
    assert advice["concentration_threshold"] == "0.6"
    [concentrated] = advice["suggestions"]
    assert concentrated["kind"] == "concentration" and concentrated["asset"] == "BTC"
    assert concentrated["message"].startswith("BTC is 98.5 % of your portfolio, more than 60 %")

    assert client.get("/api/v1/portfolio/targets").json() == {"targets": None, "tolerance": "0.02", "updated_at": None}
    saved = client.put(
        "/api/v1/portfolio/targets", {"targets": {"btc": "0.4", "USDT": "0.6"}, "tolerance": "0.05"}, format="json"
    )
    assert saved.status_code == 200, saved.content[:400]
    assert saved.json()["targets"] == {"BTC": "0.4", "USDT": "0.6"} and saved.json()["tolerance"] == "0.05"

    advice = client.get("/api/v1/portfolio/suggestions").json()
    assert advice["targets"] == {"BTC": "0.4", "USDT": "0.6"}
    drifted = advice["suggestions"][0]
    assert drifted["kind"] == "drift" and drifted["asset"] == "BTC" and drifted["target"] == "0.4"
    assert "above its 40 % target by more than the 5 % you allow. A rebalance would sell " in drifted["message"]
    assert [o["side"] for o in advice["orders"]] == ["sell"]
    assert D(advice["drift"]) > D("0.5")
    assert not SpotOrder.objects.exists()


@pytestmark_db
def test_an_empty_portfolio_gets_no_suggestion():
    advice = client_for(funded_trader(usdt="0", btc="0")).get("/api/v1/portfolio/suggestions").json()
    assert advice["suggestions"] == [] and advice["weights"] == {}
