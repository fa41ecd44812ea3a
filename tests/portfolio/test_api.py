"""GET /api/v1/portfolio, /portfolio/lots and /portfolio/pnl against PostgreSQL, for a trader
with fills on our book, a smart order, an RFQ, options and a withdrawal: quantities are the
ledger's balances, each value is the balance at the shown price, the figures reconcile
(realized + unrealized = value − net invested), and bad input is a 4xx naming the field."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders.options.models import OptionPosition
from portfolio import core, history
from tests.orders.conftest import print_index

from .world import build, client_for, ledger_totals, trader

D = Decimal
pytestmark = pytest.mark.django_db
U6 = D("0.000001")


@pytest.fixture
def world(settings, django_capture_on_commit_callbacks, eager_tasks):
    return build(settings, django_capture_on_commit_callbacks)


def get(client, path, status=200):
    response = client.get(path)
    assert response.status_code == status, response.content[:500]
    return response.json()


def value(quantity: Decimal, price: Decimal) -> Decimal:
    return (quantity * price).quantize(U6, rounding=ROUND_HALF_EVEN)


@pytest.mark.parametrize("method", ["fifo", "average"])
def test_the_portfolio_is_the_ledgers_balances_at_the_shown_prices_and_reconciles(world, method):
    alice, a = world["alice"], world["a"]
    body = get(a, f"/api/v1/portfolio?method={method}")
    assert body["method"] == method and body["stale"] is False
    totals = ledger_totals(alice)
    balances = {row["asset"]: row for row in get(a, "/api/v1/balances")}
    lines = {line["asset"]: line for line in body["assets"]}
    assert set(lines) == {"USDT", "BTC", "ETH"}
    for asset, line in lines.items():
        assert D(line["quantity"]) == totals[asset] == D(balances[asset]["total"])
        assert D(line["available"]) == D(balances[asset]["available"]) and D(line["held"]) == D(balances[asset]["held"])
        assert D(line["value_usdt"]) == value(D(line["quantity"]), D(line["price_usdt"]))
        assert D(line["unrealized_pnl_usdt"]) == D(line["value_usdt"]) - D(line["cost_basis_usdt"])
        assert line["stale"] is False
    assert lines["USDT"]["price_usdt"] == "1" and lines["BTC"]["price_source"] == "last_trade"

    options = body["options"]
    [position] = options["positions"]
    held = OptionPosition.objects.get(user=alice, series=world["series"])
    assert position["series"] == world["series"] and D(position["contracts"]) == held.contracts
    assert D(position["value_usdt"]) == value(held.contracts, D(position["mark_price_usdt"]))
    assert D(options["value_usdt"]) == D(position["value_usdt"])

    total = D(body["total_usdt"])
    assert total == sum(D(line["value_usdt"]) for line in lines.values()) + D(options["value_usdt"])
    assert sum(D(line["weight"]) for line in lines.values()) + D(options["weight"]) == pytest.approx(
        D(1), abs=D("0.00001")
    )
    realized = sum(D(line["realized_pnl_usdt"]) for line in lines.values()) + D(options["realized_pnl_usdt"])
    unrealized = sum(D(line["unrealized_pnl_usdt"]) for line in lines.values()) + D(options["unrealized_pnl_usdt"])
    assert D(body["realized_pnl_usdt"]) == realized and D(body["unrealized_pnl_usdt"]) == unrealized
    assert realized + unrealized == total - D(body["net_invested_usdt"])

    # everything happened today: the day started at nothing, so today's PnL is all of it
    assert D(body["value_at_day_start_usdt"]) == 0
    assert D(body["net_flows_today_usdt"]) == D(body["net_invested_usdt"])
    assert D(body["pnl_today_usdt"]) == total - D(body["net_invested_usdt"])
    # the option was bought this session: its session PnL (value − premium paid + proceeds)
    # is all its PnL
    assert D(position["session_pnl_usdt"]) == D(position["unrealized_pnl_usdt"]) + D(position["realized_pnl_usdt"])
    assert D(options["session_pnl_usdt"]) == D(position["session_pnl_usdt"])


def test_the_method_changes_the_cost_basis_not_the_quantities_or_the_value(world):
    a = world["a"]
    fifo, average = get(a, "/api/v1/portfolio?method=fifo"), get(a, "/api/v1/portfolio?method=AVERAGE")
    assert average["method"] == "average"
    btc = [next(line for line in body["assets"] if line["asset"] == "BTC") for body in (fifo, average)]
    assert btc[0]["quantity"] == btc[1]["quantity"] and btc[0]["value_usdt"] == btc[1]["value_usdt"]
    assert btc[0]["cost_basis_usdt"] != btc[1]["cost_basis_usdt"]
    # what one method keeps in the cost basis the other has realized: their PnL is the same
    for line in btc:
        line["pnl"] = D(line["unrealized_pnl_usdt"]) + D(line["realized_pnl_usdt"])
    assert btc[0]["pnl"] == btc[1]["pnl"]
    assert get(a, "/api/v1/portfolio")["method"] == "fifo"


def test_open_lots_add_up_to_the_balance_and_the_cost_basis(world):
    alice, a = world["alice"], world["a"]
    btc = ledger_totals(alice)["BTC"]
    fifo = get(a, "/api/v1/portfolio/lots?asset=btc&method=fifo")
    assert fifo["asset"] == "BTC" and D(fifo["quantity"]) == btc
    assert len(fifo["lots"]) > 1 and sum(D(lot["quantity"]) for lot in fifo["lots"]) == btc
    assert sum(D(lot["cost_usdt"]) for lot in fifo["lots"]) == D(fifo["cost_usdt"])
    assert [lot["acquired_at"] for lot in fifo["lots"]] == sorted(lot["acquired_at"] for lot in fifo["lots"])
    assert {lot["source"] for lot in fifo["lots"]} <= {"book", "smart", "rfq", "wallet"}
    portfolio = get(a, "/api/v1/portfolio?method=fifo")
    assert fifo["cost_usdt"] == next(line["cost_basis_usdt"] for line in portfolio["assets"] if line["asset"] == "BTC")

    [pooled] = get(a, "/api/v1/portfolio/lots?asset=BTC&method=average")["lots"]
    assert (D(pooled["quantity"]), pooled["source"]) == (btc, "average")

    series = get(a, f"/api/v1/portfolio/lots?asset={world['series']}")
    assert D(series["quantity"]) == D("0.3") and len(series["lots"]) == 1
    assert get(a, "/api/v1/portfolio/lots?asset=ETH")["lots"] == []


def test_realized_pnl_lists_each_disposal_and_sums_them(world):
    alice, a = world["alice"], world["a"]
    for method in core.METHODS:
        body = get(a, f"/api/v1/portfolio/pnl?method={method}")
        kinds = {(d["asset"], d["kind"]) for d in body["disposals"]}
        assert {("BTC", "sell"), ("BTC", "withdrawal"), ("BTC", "fee"), (world["series"], "option_close")} <= kinds
        for d in body["disposals"]:
            assert D(d["pnl_usdt"]) == D(d["proceeds_usdt"]) - D(d["cost_usdt"])
        assert D(body["total_usdt"]) == sum(D(d["pnl_usdt"]) for d in body["disposals"])
        assert D(body["total_usdt"]) == sum(D(v) for v in body["by_asset"].values())
        # every disposal so far is this year's: the same as the realized PnL of the portfolio
        portfolio = get(a, f"/api/v1/portfolio?method={method}")
        assert D(body["total_usdt"]) == D(portfolio["realized_pnl_usdt"])
        book = core.replay(history.history_of(user_id=alice.pk), method)
        assert len(body["disposals"]) == len(book.disposals)

    # a period before any of it: nothing realized
    empty = get(a, "/api/v1/portfolio/pnl?start=2020-01-01&end=2020-02-01T00:00:00Z")
    assert (empty["total_usdt"], empty["by_asset"], empty["disposals"]) == ("0.000000", {}, [])
    assert empty["start"] == "2020-01-01T00:00:00Z" and empty["end"] == "2020-02-01T00:00:00Z"


def test_a_stale_price_is_marked_and_kept_never_zero(world):
    a = world["a"]
    print_index("BTC", None, stale=True)
    print_index("ETH", None, stale=True)
    body = get(a, "/api/v1/portfolio")
    btc = next(line for line in body["assets"] if line["asset"] == "BTC")
    assert btc["stale"] is True and body["stale"] is True
    assert D(btc["price_usdt"]) > 0 and D(btc["value_usdt"]) > 0
    assert body["options"]["stale"] is True and D(body["options"]["value_usdt"]) > 0


def test_a_new_trader_has_an_empty_portfolio(db, settings):
    from .world import markets

    markets(settings)
    newcomer = trader()
    body = get(client_for(newcomer), "/api/v1/portfolio")
    assert body["total_usdt"] == "0.000000" and body["pnl_today_usdt"] == "0.000000"
    assert [line["quantity"] for line in body["assets"]] == ["0.000000", "0.00000000", "0.00000000"]
    assert body["options"]["positions"] == []
    lots = get(client_for(newcomer), "/api/v1/portfolio/lots?asset=BTC")
    assert (lots["quantity"], lots["lots"]) == ("0", [])


def test_each_trader_sees_their_own(world):
    bob_lines = {line["asset"]: line for line in get(world["b"], "/api/v1/portfolio")["assets"]}
    assert D(bob_lines["ETH"]["quantity"]) == D("10") == ledger_totals(world["bob"])["ETH"]
    assert get(world["b"], "/api/v1/portfolio")["options"]["positions"] == []


@pytest.mark.parametrize(
    "path, code, field",
    [
        ("/api/v1/portfolio?method=lifo", "validation_error", "method"),
        ("/api/v1/portfolio/lots?asset=BTC&method=hifo", "validation_error", "method"),
        ("/api/v1/portfolio/lots?asset=DOGE", "unknown_asset", "asset"),
        ("/api/v1/portfolio/lots?asset=BTC-20990101-1-C", "unknown_asset", "asset"),
        ("/api/v1/portfolio/lots", "validation_error", "asset"),
        ("/api/v1/portfolio/pnl?start=2026-03-01&end=2026-02-01", "validation_error", "end"),
        ("/api/v1/portfolio/pnl?start=2026-03-01&end=2026-03-01", "validation_error", "end"),
        ("/api/v1/portfolio/pnl?start=2019-01-01&end=2026-01-02", "validation_error", "start"),
        ("/api/v1/portfolio/pnl?start=yesterday", "validation_error", "start"),
        ("/api/v1/portfolio/pnl?end=2026-13-01", "validation_error", "end"),
        ("/api/v1/portfolio/pnl?method=average&start=99999999999999999999", "validation_error", "start"),
        ("/api/v1/portfolio/pnl?method=x", "validation_error", "method"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(db, settings, path, code, field):
    from .world import markets

    markets(settings)
    response = client_for(trader(usdt="100")).get(path)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code and field in error["fields"], error


def test_without_a_start_the_period_is_the_year_of_its_end(db, settings):
    from .world import markets

    markets(settings)
    client = client_for(trader(usdt="100"))
    body = get(client, "/api/v1/portfolio/pnl?end=2027-01-01T00:00:00Z")
    assert (body["start"], body["end"]) == ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
    body = get(client, "/api/v1/portfolio/pnl?end=2026-03-05")
    assert (body["start"], body["end"]) == ("2026-01-01T00:00:00Z", "2026-03-05T00:00:00Z")


def test_a_range_of_exactly_five_years_is_accepted(db, settings):
    from .world import markets

    markets(settings)
    end = timezone.now().replace(microsecond=0)
    start = end - timedelta(days=5 * 365)
    client = client_for(trader(usdt="100"))
    body = get(client, f"/api/v1/portfolio/pnl?start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}")
    assert body["disposals"] == []


def test_signing_in_is_required(db):
    for path in ("/api/v1/portfolio", "/api/v1/portfolio/lots?asset=BTC", "/api/v1/portfolio/pnl"):
        response = APIClient().get(path)
        assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
