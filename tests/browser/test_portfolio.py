"""End to end in a real browser: the Portfolio page.

Real processes: daphne (the conftest's, stack mode on the test database and Redis) and
``manage.py run_engine --symbol BTC-USDT``; a thread of the test keeps the index fresh at a
flat price. A trader buys BTC twice and sells part of it (market orders through the orders
API, matched by the engine against a maker's quotes), buys a BTC call and closes it, then:

* opens the Portfolio page: each asset's quantity is its ledger balance, and the total value
  equals the sum of the balances at the prices the page shows (plus the options at mark);
* switches the cost method (FIFO, average cost) and drills into the open lots of BTC: the
  figures are the API's for that method;
* the ticker moves BTC (a new trade on the book, published as the feed publishes tickers):
  the price, the value and the total follow without a reload, and still add up;
* downloads a statement: the PDF opens (starts with %PDF, parses, shows the closing BTC
  balance) and the CSV parses with the ledger's closing balances;
* previews a rebalance to 50 % BTC / 50 % USDT and places it: the buy is entered through
  order entry and fills, and the page shows the new allocation; saved targets of 20 % BTC
  then bring a plain-language drift suggestion, whose button loads them into the form;
* at phone width (390 px): no sideways scroll of the page, and the key columns (asset, value,
  unrealized PnL) are on screen; the rebalance preview works there too.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from decimal import ROUND_HALF_UP, Decimal

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from ledger.selectors import balance_of
from marketdata.models import Instrument
from marketdata.selectors import ticker
from marketdata.streams import publish_tick
from orders.models import OptionPosition, SpotOrder
from orders.spot.services import order_request, spot_order_place
from portfolio.models import RebalanceBatch
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD
from tests.orders.conftest import IndexTicker, client_for, list_series, pick_series, trader
from tests.orders.spot.conftest import funded_trader

from .test_trading import EngineProcess, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_MS = 10_000
SYMBOL = "BTC-USDT"


def number(text: str) -> Decimal:
    """A figure as the page writes it: thousands commas, a typographic minus, a sign."""
    return Decimal(text.replace(",", "").replace("−", "-").replace("+", "").replace("USDT", "").strip())


def cents(value: Decimal) -> str:
    """How the page writes a USDT amount: two places, half-up, thousands commas."""
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"


@pytest.fixture
def engine(transactional_db, tmp_path):
    """Spot pairs and option series at a fresh index, and the BTC-USDT engine process."""
    list_series()
    with IndexTicker():
        process = EngineProcess(tmp_path / "run_engine.log")
        try:
            yield process
        finally:
            process.stop()
            log = process.log()
            if "Traceback" in log:
                sys.stderr.write(f"\n--- run_engine log ---\n{log}\n")


def rest(user, side: str, price: str, quantity: str) -> SpotOrder:
    order, _ = spot_order_place(
        user=user, request=order_request(symbol=SYMBOL, side=side, type="limit", price=price, quantity=quantity)
    )
    wait_for(lambda: SpotOrder.objects.get(pk=order.pk).status == "open", f"order {order.pk} to rest")
    return order


@pytest.fixture
def history(engine, live_server_url):
    """A maker's quotes around the 65,000.12 index, and a trader who bought BTC twice, sold part
    of it, and bought then closed a BTC call."""
    engine.wait_until_leading()
    maker = funded_trader(usdt="1000000", btc="20")
    rest(maker, "sell", "65100", "0.05")
    rest(maker, "sell", "65200", "5")
    rest(maker, "buy", "64900", "5")

    user = trader(usdt="100000")
    api = client_for(user)

    def market(side: str, quantity: str):
        response = api.post(
            "/api/v1/orders?wait=1",
            {"symbol": SYMBOL, "side": side, "type": "market", "quantity": quantity},
            format="json",
        )
        assert response.status_code == 201, response.content[:400]
        order_id = response.json()["id"]
        wait_for(lambda: SpotOrder.objects.get(pk=order_id).status == "filled", f"market {side} {quantity} to fill")

    market("buy", "0.05")  # at 65,100
    market("buy", "0.04")  # at 65,200
    market("sell", "0.03")  # at 64,900: FIFO sells from the first lot

    series = pick_series("BTC", "C")
    for side in ("buy", "sell"):
        quote = api.post(
            "/api/v1/options/quotes", {"series": series.symbol, "side": side, "contracts": "0.5"}, format="json"
        )
        assert quote.status_code == 201, quote.content[:400]
        order = api.post("/api/v1/options/orders", {"quote_id": quote.json()["quote_id"]}, format="json")
        assert order.status_code == 201, order.content[:400]
    assert OptionPosition.objects.get(user=user, instrument__symbol=series.symbol).contracts == 0
    return {"user": user, "maker": maker, "api": api, "series": series.symbol}


def sign_in(page, user, path="/portfolio/"):
    page.goto(f"/login/?next={path}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def ready(page) -> None:
    expect(page.locator("#portfolio-page")).to_have_attribute("data-ready", "true", timeout=LIVE_MS)


def rows(page) -> dict[str, dict[str, str]]:
    """Each asset row's exact figures (the data-value of each cell) and its shown text."""
    found = {}
    for row in page.locator("#assets tbody tr[data-asset]").all():
        cells = {}
        for cell in row.locator("td[data-field]").all():
            cells[cell.get_attribute("data-field")] = cell.get_attribute("data-value")
            cells[f"{cell.get_attribute('data-field')}_text"] = cell.inner_text()
        found[row.get_attribute("data-asset")] = cells
    return found


def assert_total_is_the_sum_at_the_shown_prices(page) -> Decimal:
    """Σ quantity × price (each at USDT's 6 places, as the platform values an asset) + the
    options at mark = the total shown; returns that total."""
    shown = rows(page)
    summed = Decimal(page.locator("[data-field=options-value]").get_attribute("data-value"))
    for asset, cells in shown.items():
        quantity, price = Decimal(cells["quantity"]), Decimal(cells["price"])
        value = (quantity * price).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        assert Decimal(cells["value"]) == value, asset
        # what the page writes is that value, and the price it writes is the one it used
        assert number(cells["value_text"]) == value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), asset
        if asset != "USDT":
            assert number(cells["price_text"]) == price.quantize(Decimal("0.01")), asset
        summed += value
    total = page.locator("[data-field=total]")
    assert Decimal(total.get_attribute("data-value")) == summed
    assert total.inner_text() == cents(summed)
    return summed


def test_the_portfolio_page(page, browser, history, live_server_url, screenshot_dir):
    user, api = history["user"], history["api"]
    page.set_viewport_size(DESKTOP)
    sign_in(page, user)
    ready(page)
    expect(page.get_by_role("link", name="Portfolio")).to_have_attribute("aria-current", "page")

    # --- the balances are the ledger's, and the total is their sum at the shown prices ---------
    shown = rows(page)
    assert set(shown) == {"USDT", "BTC", "ETH"}
    for asset in shown:
        assert Decimal(shown[asset]["quantity"]) == balance_of(user=user, asset=asset).total, asset
    assert Decimal(shown["BTC"]["quantity"]) == Decimal("0.09") * Decimal("0.998") - Decimal(
        "0.03"
    )  # buys' fees in BTC
    assert Decimal(shown["BTC"]["price"]) == Decimal("64900")  # the last trade on the book
    total = assert_total_is_the_sum_at_the_shown_prices(page)
    body = api.get("/api/v1/portfolio").json()
    assert Decimal(body["total_usdt"]) == total
    expect(page.locator("[data-field=pnl-today]")).to_have_text(
        re.compile(r"^[+−]?" + re.escape(cents(abs(Decimal(body["pnl_today_usdt"])))) + "$")
    )
    # the option bought and closed this session: realized, nothing open
    option = page.locator(f"#option-positions tr[data-series='{history['series']}']")
    expect(option).to_be_visible()
    expect(option.locator("[data-field=contracts]")).to_have_text("0.00")
    assert Decimal(option.locator("[data-field=realized]").get_attribute("data-value")) < 0  # the counter's spread
    # the allocation chart and the equity curve
    expect(page.locator("#allocation-legend li[data-slice=BTC]")).to_be_visible()
    expect(page.locator("#equity-chart")).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))

    # --- the cost method, and the open lots ------------------------------------------------------------
    fifo_cost = Decimal(rows(page)["BTC"]["cost"])
    assert fifo_cost == Decimal(body["assets"][1]["cost_basis_usdt"])
    page.get_by_role("button", name="Average cost").click()
    expect(page.locator("#portfolio-page")).to_have_attribute("data-method", "average")
    average = api.get("/api/v1/portfolio?method=average").json()
    expect(page.locator("#assets tr[data-asset=BTC] [data-field=cost]")).to_have_attribute(
        "data-value", average["assets"][1]["cost_basis_usdt"]
    )
    assert Decimal(average["assets"][1]["cost_basis_usdt"]) != fifo_cost  # two buys at two prices, one sale
    page.get_by_role("button", name="FIFO").click()
    page.locator("#assets tr[data-asset=BTC]").get_by_role("button", name="Lots").click()
    lots = api.get("/api/v1/portfolio/lots?asset=BTC&method=fifo").json()["lots"]
    expect(page.locator("#lots-table tbody tr[data-lot]")).to_have_count(len(lots))
    assert len(lots) == 2  # what is left of the first buy, and the second
    for row, lot in zip(page.locator("#lots-table tbody tr[data-lot]").all(), lots, strict=True):
        assert number(row.locator("[data-field=quantity]").inner_text()) == Decimal(lot["quantity"])
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header stays on top in a full-page shot
    page.screenshot(path=str(screenshot_dir / "portfolio-desktop.png"), full_page=True)

    # --- live: a new trade moves the ticker; the values follow without a reload ----------------------
    paints = int(page.locator("#portfolio-page").get_attribute("data-paints"))
    other = funded_trader(usdt="100000", btc="0")
    spot_order_place(user=other, request=order_request(symbol=SYMBOL, side="buy", type="market", quantity="0.01"))
    instrument = Instrument.objects.get(symbol=SYMBOL)
    wait_for(lambda: ticker(instrument=instrument)["last"] == "65200", "the trade at 65,200")
    publish_tick(prints=[], bars=[], tickers={SYMBOL: ticker(instrument=instrument)})  # as the feed does each tick
    expect(page.locator("#assets tr[data-asset=BTC] [data-field=price]")).to_have_attribute(
        "data-value", "65200", timeout=LIVE_MS
    )
    assert int(page.locator("#portfolio-page").get_attribute("data-paints")) > paints
    moved = assert_total_is_the_sum_at_the_shown_prices(page)
    assert moved != total

    # --- the statement: the PDF opens, the CSV parses, and both close at the ledger's balances --------
    with page.expect_download() as pdf_download:
        page.locator("[data-download=statement-pdf]").click()
    pdf = open(pdf_download.value.path(), "rb").read()
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    text = "".join(p.extract_text() for p in reader.pages)
    assert len(reader.pages) >= 1 and user.email in text
    btc_closing = balance_of(user=user, asset="BTC").total
    assert f"{btc_closing:f}" in text.replace(",", "")
    with page.expect_download() as csv_download:
        page.locator("[data-download=statement-csv]").click()
    table = list(csv.reader(io.StringIO(open(csv_download.value.path(), encoding="utf-8").read())))
    assert table[0] == ["statement", user.email]
    header = table.index(["asset", "opening", "closing", "change", "closing_price_usdt", "closing_value_usdt"])
    closing = {line[0]: Decimal(line[2]) for line in table[header + 1 : header + 4]}
    assert closing == {asset: balance_of(user=user, asset=asset).total for asset in ("USDT", "BTC", "ETH")}

    # --- rebalance: preview, then place ----------------------------------------------------------------------
    form = page.locator("#rebalance-form")
    form.locator("#target-BTC").fill("50")
    form.locator("#target-USDT").fill("50")
    form.locator("#target-ETH").fill("0")
    expect(form.locator("[data-field=target-sum]")).to_have_text("100")
    place = page.get_by_role("button", name="Place orders")
    expect(place).to_be_disabled()
    page.get_by_role("button", name="Preview").click()
    preview_rows = page.locator("#rebalance-orders tbody tr[data-order-side]")
    expect(preview_rows).to_have_count(1)
    expect(preview_rows.first).to_have_attribute("data-order-side", "buy")
    planned = number(preview_rows.first.locator("[data-field=quantity]").inner_text())
    expect(page.locator("#rebalance-preview [data-field=drift]")).to_contain_text("after these orders")
    assert not SpotOrder.objects.filter(user=user, client_order_id__startswith="rebalance:").exists()
    expect(place).to_be_enabled()
    place.click()
    expect(page.locator("#rebalance-done")).to_contain_text("Rebalance placed: 1 order entered.", timeout=LIVE_MS)
    expect(preview_rows.first.locator("[data-field=result]")).to_have_attribute("data-state", "placed")
    batch = RebalanceBatch.objects.get(user=user)
    [entered] = SpotOrder.objects.filter(user=user, client_order_id__startswith=f"rebalance:{batch.pk}:")
    assert (entered.side, entered.type, entered.status) == ("buy", "market", "filled")
    assert entered.filled_quantity == planned
    # the page refetches: BTC is now about half of the spot value
    expect(page.locator("#assets tr[data-asset=BTC] [data-field=quantity]")).to_have_attribute(
        "data-value", f"{balance_of(user=user, asset='BTC').total:f}", timeout=LIVE_MS
    )
    weight = Decimal(page.locator("#assets tr[data-asset=BTC] [data-field=weight]").get_attribute("data-value"))
    assert abs(weight - Decimal("0.5")) < Decimal("0.02")
    assert_total_is_the_sum_at_the_shown_prices(page)
    expect(page.locator("#suggestions [data-suggestion]")).to_have_count(0)  # on target, nothing above 60 %

    # --- other targets, saved: the page says in plain words that the portfolio has drifted -------------
    form.locator("#target-BTC").fill("20")
    form.locator("#target-USDT").fill("80")
    page.get_by_role("button", name="Save as my targets").click()
    expect(page.locator("#rebalance-done")).to_contain_text("Saved as your targets")
    drifted = page.locator("#suggestions [data-suggestion=drift]")
    expect(drifted).to_contain_text(re.compile(r"has drifted from your targets: BTC is (49|50)(\.\d)? % of it"))
    expect(drifted).to_contain_text("A rebalance would sell ")
    form.locator("#target-BTC").fill("35")
    form.locator("#target-USDT").fill("65")
    drifted.get_by_role("button", name="Review the rebalance").click()
    expect(form.locator("#target-BTC")).to_have_value("20")
    expect(form.locator("#target-USDT")).to_have_value("80")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshot_dir / "portfolio-rebalanced-desktop.png"), full_page=True)

    # --- a tablet's width: the page (and its header) does not scroll sideways ---------------------
    page.set_viewport_size({"width": 900, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 900

    # --- phone width ---------------------------------------------------------------------------------
    phone = phone_context(browser, live_server_url, page.context.storage_state())
    try:
        mobile = phone.new_page()
        mobile.goto("/portfolio/")
        ready(mobile)
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        btc = mobile.locator("#assets tr[data-asset=BTC]")
        for field in ("value", "unrealized"):
            cell = btc.locator(f"[data-field={field}]")
            expect(cell).to_be_visible()
            box = cell.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (field, box)
        expect(btc.locator("td").first).to_contain_text("BTC")
        btc.locator("td").first.get_by_role("button", name="BTC").click()  # the name opens its lots
        expect(mobile.locator("#lots-table tbody tr[data-lot]")).to_have_count(3)  # + the rebalance's buy
        expect(mobile.locator("[data-field=total]")).to_be_visible()
        mobile.locator("#target-BTC").fill("40")
        mobile.locator("#target-USDT").fill("60")
        mobile.locator("#target-ETH").fill("0")
        mobile.get_by_role("button", name="Preview").click()
        expect(mobile.locator("#rebalance-orders tbody tr[data-order-side=sell]")).to_have_count(1)
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        mobile.evaluate("window.scrollTo(0, 0)")
        mobile.screenshot(path=str(screenshot_dir / "portfolio-phone.png"), full_page=True)
    finally:
        phone.close()
    assert SpotOrder.objects.filter(user=user, client_order_id__startswith="rebalance:").count() == 1


def test_signed_out_visitors_are_sent_to_log_in(page, live_server_url):
    page.goto("/portfolio/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/portfolio/$"))
