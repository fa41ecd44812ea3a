"""In a real browser: the option chain shows each series' greeks and open interest (all of
them at desktop width; bid, mark and ask on a phone), and a quote in the ticket draws the
quoted contracts' payoff at expiry with its breakeven. The index ticks from a thread of the
test at a flat price; daphne serves the page and the API on the test database."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from playwright.sync_api import expect

from orders.options.services import options_order_place
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.orders.conftest import IndexTicker, list_series, pick_series, trader

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GREEKS = ("gamma", "vega", "theta", "open_interest")


@pytest.fixture
def market(live_server_url):
    list_series()
    with IndexTicker():
        yield


def sign_in(page, user):
    page.goto("/login/?next=/options/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", "correct-Horse-battery-9")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/options/$"))


def chain_row(page, series):
    page.locator("#expiry").select_option(series.expiry.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return page.locator(f"#chain tr[data-strike='{series.strike.normalize():f}']")


def width(locator) -> float:
    return locator.evaluate("el => el.getBoundingClientRect().width")


def cell_width(page, series, field: str) -> float:
    """The width of the series' first ``field`` cell as the chain shows it now, found and
    measured in one script: the chain redraws its rows every few seconds, and an element a
    locator found just before a redraw measures 0 once it is detached."""
    selector = f"#chain tr[data-strike='{series.strike.normalize():f}'] td[data-field={field}]"
    return page.evaluate("(s) => document.querySelector(s).getBoundingClientRect().width", selector)


def test_the_chain_shows_greeks_and_open_interest_and_the_ticket_a_payoff_chart(
    page, market, browser, live_server_url, screenshot_dir
):
    series = pick_series("BTC", "C")
    holder = trader()
    options_order_place(user=holder, series=series.symbol, side="buy", contracts="1.25", limit_price_usdt="999999")
    user = trader()
    page.set_viewport_size(DESKTOP)
    sign_in(page, user)

    # --- the chain: greeks and open interest beside the prices, calls mirrored left of the strike ---
    header = page.locator("#chain thead tr").nth(1).locator("th")
    expect(header).to_have_count(19)
    assert [header.nth(i).text_content() for i in range(4)] == ["OI", "Theta", "Vega", "Gamma"]
    assert header.nth(9).text_content() == "Strike"
    assert [header.nth(i).text_content() for i in range(15, 19)] == ["Gamma", "Vega", "Theta", "OI"]
    row = chain_row(page, series)
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells).to_have_count(18)
    expect(cells.nth(0)).to_have_attribute("data-field", "open_interest")
    expect(cells.nth(0)).to_have_text("1.25")  # the holder's position
    expect(cells.nth(17)).to_have_text("0.00")  # nobody holds the put
    for field in GREEKS:
        cell = row.locator(f"td[data-field={field}]").first
        expect(cell).to_have_text(re.compile(r"^−?\d{1,3}(,\d{3})*(\.\d+)?$"))
        if field != "gamma":
            expect(cell).to_be_visible()
    # the whole chain fits its card at 1280 px (the gamma columns give way below 1440 px)
    scroller = page.locator("#chain").locator("xpath=..")
    fits = scroller.evaluate("(e) => [e.scrollWidth, e.clientWidth]")
    assert fits[0] <= fits[1], fits
    assert cell_width(page, series, "gamma") < 1
    page.set_viewport_size({"width": 1600, "height": 900})
    assert cell_width(page, series, "gamma") > 10
    page.set_viewport_size(DESKTOP)
    assert Decimal(row.locator("td[data-field=vega]").first.inner_text()) > 0
    assert row.locator("td[data-field=theta]").first.inner_text().startswith("−")
    # a click on a greek of the put side still picks the put
    cells.nth(16).click()
    expect(page.locator("#ticket-series")).to_have_value(series.symbol[:-1] + "P")

    # --- the ticket: a quote draws the payoff at expiry ------------------------------------------------
    page.locator("#ticket-series").select_option(series.symbol)
    page.fill("#ticket-contracts", "0.5")
    payoff = page.locator("#ticket-payoff")
    expect(payoff).to_be_hidden()
    page.get_by_role("button", name="Get quote").click()
    expect(page.locator("#ticket-quote")).to_be_visible()
    expect(payoff).to_be_visible()
    price = Decimal(page.locator("[data-field=quote-price]").inner_text().replace(",", "").replace("USDT", ""))
    breakeven = series.strike.normalize() + price  # as the series name writes the strike
    expect(payoff).to_have_attribute("data-breakeven", f"{breakeven:f}")
    summary = payoff.locator("[data-field=payoff-summary]")
    expect(summary).to_contain_text(f"breakeven {breakeven.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}")
    # the page's formatter rounds half-up (lib/format.js), as a receipt does: 643.665 -> 643.67
    max_loss = (price * Decimal("0.5")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    expect(summary).to_contain_text(f"max loss {max_loss:,.2f} USDT")
    expect(summary).to_contain_text("max profit unlimited")
    line = payoff.locator("svg polyline.payoff-line")
    expect(line).to_have_count(1)
    assert len(line.get_attribute("points").split()) > 50
    assert width(payoff.locator("svg")) > 200
    expect(payoff.locator("svg .payoff-breakeven")).to_have_count(1)
    expect(payoff.locator("svg .payoff-index")).to_have_count(1)
    page.screenshot(path=str(screenshot_dir / "options-payoff-desktop.png"), full_page=True)
    # a new series or amount hides the chart with the quote
    page.fill("#ticket-contracts", "0.6")
    expect(payoff).to_be_hidden()

    # --- phone width: bid, mark and ask stay, the greeks' columns collapse; the chart fits --------------
    phone = phone_context(browser, live_server_url, page.context.storage_state())
    try:
        mobile = phone.new_page()
        mobile.goto("/options/")
        row = chain_row(mobile, series)
        expect(row).to_have_count(1)
        expect(row.locator("td[data-field=bid_usdt]").first).to_be_visible()
        # laid out at phone width (on a loaded machine the first layout may come after the row)
        mark = f"#chain tr[data-strike='{series.strike.normalize():f}'] td[data-field=mark_usdt]"
        mobile.wait_for_function("(s) => document.querySelector(s)?.getBoundingClientRect().width > 10", arg=mark)
        assert cell_width(mobile, series, "mark_usdt") > 10
        for field in GREEKS:
            assert cell_width(mobile, series, field) < 1, field
        mobile.locator("#ticket-series").select_option(series.symbol)
        mobile.get_by_role("button", name="Get quote").click()
        chart = mobile.locator("#ticket-payoff svg")
        expect(chart).to_be_visible()
        assert 200 < width(chart) <= PHONE["width"]
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        mobile.screenshot(path=str(screenshot_dir / "options-payoff-phone.png"), full_page=True)
    finally:
        phone.close()
