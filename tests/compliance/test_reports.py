"""Reports: GET /api/v1/reports/trades and /api/v1/reports/tax against real histories made
through the platform's services (book fills as maker and taker, a smart order split between
the book and a venue, an RFQ block, options, deposits and withdrawals); the tax report's
disposals worked out by hand for FIFO, its totals against /portfolio/pnl and the ledger; and
``manage.py report_transactions`` read back against the trades table."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Q
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from compliance import reports
from ledger.models import AccountKind, LedgerAccount, Transfer, TransferKind
from marketdata.services import instruments_sync
from orders.options.models import OptionOrder
from orders.spot.models import RfqQuote, SpotTrade, VenueOrder
from portfolio import selectors
from tests.orders.conftest import INDEX, print_index
from tests.orders.spot.conftest import Engine, client_for, funded_trader
from tests.portfolio import trading_world
from tests.portfolio.report_helpers import candle, deposit, trader, withdraw

D = Decimal
THIS_YEAR = timezone.now().year


@pytest.fixture
def markets(db):
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


@pytest.fixture
def world(settings, markets, eager_tasks):
    return trading_world.build(settings)


def get(who, path, **params):
    return client_for(who).get(f"/api/v1/reports/{path}", params)


def spot_ids(user) -> set[str]:
    trades = SpotTrade.objects.filter(Q(maker_user=user) | Q(taker_user=user))
    return {f"spot:{pk}" for pk in trades.values_list("pk", flat=True)}


def trade_ids(user) -> set[str]:
    """Every trade of ``user``, read from the tables one kind at a time."""
    ids = spot_ids(user)
    ids |= {
        f"venue:{c}"
        for c in VenueOrder.objects.filter(user=user, filled_quantity__gt=0).values_list("client_order_id", flat=True)
    }
    ids |= {
        f"rfq:{q}" for q in RfqQuote.objects.filter(user=user, accepted_at__isnull=False).values_list("pk", flat=True)
    }
    ids |= {f"option:{o}" for o in OptionOrder.objects.filter(user=user).values_list("pk", flat=True)}
    return ids


def read_sections(text: str) -> dict:
    """A report CSV read back: the heading pairs as a dict, each section (its name alone on
    a line, then its header and rows) as a list of dicts."""
    heading, sections, current, header = {}, {}, None, None
    for line in csv.reader(io.StringIO(text)):
        if not line:
            current = header = None
        elif current is None and len(line) == 1:
            current, sections[line[0]] = line[0], []
        elif current is not None and header is None:
            header = line
        elif current is not None:
            sections[current].append(dict(zip(header, line, strict=True)))
        else:
            heading[line[0]] = line[1]
    return {"heading": heading, **sections}


def outflows(user, asset: str, start: datetime, end: datetime) -> Decimal:
    """What left the trader's ``asset`` account in [start, end), posted, by the ledger."""
    account = LedgerAccount.objects.get(kind=AccountKind.USER, user=user, asset=asset)
    posted = Transfer.objects.filter(
        debit_account=account,
        kind__in=[TransferKind.POSTED, TransferKind.POST_PENDING],
        created_at__gte=start,
        created_at__lt=end,
    )
    return sum((t.amount for t in posted), D(0))


# --- the trade report ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_trade_report_is_every_trade_of_the_trader_and_no_one_elses(world):
    bob, alice, maker = world["bob"], world["alice"], world["maker"]
    response = get(bob, "trades", year=THIS_YEAR)
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert (body["year"], body["start"], body["end"]) == (
        THIS_YEAR,
        f"{THIS_YEAR}-01-01T00:00:00Z",
        f"{THIS_YEAR + 1}-01-01T00:00:00Z",
    )
    rows = body["trades"]
    assert {row["trade_id"] for row in rows} == trade_ids(bob)
    assert len(rows) == len(trade_ids(bob))  # one row per trade of his
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
    assert {row["source"] for row in rows} == {"book", "smart", "rfq", "option"}

    # each book fill as the trades table has it, from bob's side
    by_id = {row["trade_id"]: row for row in rows}
    for trade in SpotTrade.objects.filter(Q(maker_user=bob) | Q(taker_user=bob)):
        row = by_id[f"spot:{trade.pk}"]
        taker = trade.taker_user_id == bob.pk
        side = trade.taker_side if taker else ("sell" if trade.taker_side == "buy" else "buy")
        assert row["side"] == side and row["instrument"] == trade.symbol and row["venue"] == "meridian"
        assert (D(row["price"]), D(row["quantity"]), D(row["notional_usdt"])) == (
            trade.price,
            trade.quantity,
            trade.quote_amount,
        )
        assert D(row["fee"]) == (trade.taker_fee if taker else trade.maker_fee)
        assert row["fee_asset"] == ("BTC" if side == "buy" else "USDT")
        assert row["order_id"] == str(trade.taker_order_id if taker else trade.maker_order_id)
    for child in VenueOrder.objects.filter(user=bob, filled_quantity__gt=0):
        row = by_id[f"venue:{child.client_order_id}"]
        assert row["venue"] == child.venue and row["order_id"] == str(world["parent"].pk)
        assert (D(row["quantity"]), D(row["notional_usdt"]), D(row["fee"])) == (
            child.filled_quantity,
            child.filled_quote,
            child.fee,
        )
    options = [row for row in rows if row["source"] == "option"]
    assert [(row["side"], D(row["quantity"])) for row in options] == [("buy", D("0.5")), ("sell", D("0.2"))]
    assert {row["instrument"] for row in options} == {world["series"].symbol}

    # the CSV says the same, as a download
    download = get(bob, "trades", year=THIS_YEAR, format="csv")
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"] == f'attachment; filename="trades-{THIS_YEAR}.csv"'
    parsed = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert [row["trade_id"] for row in parsed] == [row["trade_id"] for row in rows]
    assert [D(row["notional_usdt"]) for row in parsed] == [D(row["notional_usdt"]) for row in rows]
    assert list(parsed[0]) == reports.TRADE_HEADER

    # IDOR: each trader sees their own trades only, whatever the query says
    for other, them in ((alice, bob), (maker, bob), (bob, alice)):
        seen = {row["trade_id"] for row in get(other, "trades", year=THIS_YEAR, user=them.pk).json()["trades"]}
        assert seen == trade_ids(other)
        assert not seen - trade_ids(other)
    shared = spot_ids(alice) & spot_ids(bob)  # their trades with each other: each sees their own side
    assert shared
    alice_rows = {r["trade_id"]: r for r in get(alice, "trades").json()["trades"]}
    for trade_id in shared:
        assert alice_rows[trade_id]["side"] != by_id[trade_id]["side"]
        assert alice_rows[trade_id]["order_id"] != by_id[trade_id]["order_id"]
    # a year without trades
    assert get(bob, "trades", year=THIS_YEAR - 1).json()["trades"] == []


# --- the tax report ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_tax_report_books_each_disposal_fifo_as_worked_out_by_hand(settings, markets):
    settings.SPOT_MAKER_FEE, settings.SPOT_TAKER_FEE = "0.001", "0.002"
    engine = Engine("BTC-USDT")
    alice = funded_trader(usdt="200000", btc="10")
    carol = trader()
    last_year = THIS_YEAR - 1
    deposited_at = datetime(last_year, 6, 1, 12, 0, 30, tzinfo=UTC)
    candle("BTC", datetime(last_year, 6, 1, 12, 0, tzinfo=UTC), 50000)
    deposit(carol, "USDT", "100000", datetime(last_year, 3, 1, 9, tzinfo=UTC))
    deposit(carol, "BTC", "0.5", deposited_at)  # 0.5 BTC at 50000: a lot costing 25000

    def trade(maker_side, price, quantity):
        trading_world.place(alice, side=maker_side, type="limit", price=price, quantity=quantity)
        engine.run()
        taker_side = "buy" if maker_side == "sell" else "sell"
        trading_world.place(carol, side=taker_side, type="limit", price=price, quantity=quantity)
        engine.run()
        return SpotTrade.objects.filter(taker_user=carol).order_by("-pk").first()

    buy1 = trade("sell", "60000.00", "0.3")  # receives 0.3 - 0.0006 fee for 18000
    buy2 = trade("sell", "62000.00", "0.2")  # receives 0.2 - 0.0004 for 12400
    sell1 = trade("buy", "65000.00", "0.6")  # 39000 less a 78 fee
    sell2 = trade("buy", "59000.00", "0.3")  # 17700 less a 35.4 fee
    withdraw(carol, "USDT", "100", timezone.now())  # its 1 USDT fee is a loss
    assert (buy1.taker_fee, sell1.taker_fee, sell2.taker_fee) == (D("0.0006"), D("78"), D("35.4"))

    response = get(carol, "tax", year=THIS_YEAR)
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    lines = body["disposals"]
    assert [(line["asset"], line["kind"]) for line in lines] == [("BTC", "sell"), ("BTC", "sell"), ("USDT", "fee")]
    first, second, fee = lines
    # the first sale: the deposited lot whole (25000), then 0.1 of the first buy's 0.2994 (18000 x 0.1 / 0.2994)
    assert D(first["quantity"]) == D("0.6")
    assert (D(first["proceeds_usdt"]), D(first["cost_basis_usdt"]), D(first["gain_usdt"])) == (
        D("38922"),
        D("31012.024048"),
        D("7909.975952"),
    )
    assert first["acquired"][0] == deposited_at.isoformat().replace("+00:00", "Z")
    assert len(first["acquired"]) == 2 and first["acquired"][1].startswith(buy1.created_at.date().isoformat())
    # the second: what is left of the first buy (0.1994 at 11987.975952), then 0.1006 of the second's 0.1996
    assert (D(second["proceeds_usdt"]), D(second["cost_basis_usdt"]), D(second["gain_usdt"])) == (
        D("17664.6"),
        D("11987.975952") + D("6249.699399"),
        D("17664.6") - D("18237.675351"),
    )
    assert len(second["acquired"]) == 2 and second["acquired"][1].startswith(buy2.created_at.date().isoformat())
    assert (D(fee["quantity"]), D(fee["gain_usdt"]), fee["acquired"]) == (D(1), D(-1), [])
    total = D("7909.975952") + D("17664.6") - D("18237.675351") - 1
    assert D(body["gain_usdt"]) == total == D("7335.900601")
    assert D(body["gains_usdt"]) == D("7909.975952") and D(body["losses_usdt"]) == total - D("7909.975952")
    assert D(body["proceeds_usdt"]) - D(body["cost_basis_usdt"]) == total
    by_asset = {t["asset"]: t for t in body["by_asset"]}
    assert (by_asset["BTC"]["disposals"], D(by_asset["BTC"]["gain_usdt"])) == (2, total + 1)

    # totals: /portfolio/pnl's realized PnL for the same method and year, both methods
    for method in ("fifo", "average"):
        tax = get(carol, "tax", year=THIS_YEAR, method=method).json()
        pnl = (
            client_for(carol)
            .get(
                "/api/v1/portfolio/pnl",
                {"start": f"{THIS_YEAR}-01-01T00:00:00Z", "end": f"{THIS_YEAR + 1}-01-01T00:00:00Z", "method": method},
            )
            .json()
        )
        assert D(tax["gain_usdt"]) == D(pnl["total_usdt"]), method
        assert [d["reference"] for d in tax["disposals"]] == [d["reference"] for d in pnl["disposals"]]
        assert {t["asset"]: D(t["gain_usdt"]) for t in tax["by_asset"]} == {a: D(v) for a, v in pnl["by_asset"].items()}
    # average cost: one pool of 0.999 BTC costing 25000 + 18000 + 12400 = 55400, opened by the deposit
    average = get(carol, "tax", year=THIS_YEAR, method="average").json()
    assert average["disposals"][0]["acquired"] == [deposited_at.isoformat().replace("+00:00", "Z")]
    assert [(D(d["cost_basis_usdt"]), D(d["gain_usdt"])) for d in average["disposals"]] == [
        (D("33273.273273"), D("5648.726727")),  # 55400 x 0.6 / 0.999
        (D("16636.636637"), D("1027.963363")),  # the 22126.726727 left x 0.3 / 0.399
        (D(1), D(-1)),
    ]
    assert D(average["gain_usdt"]) == D("6675.690090")

    # and the ledger: the BTC the sales disposed of is what left carol's BTC account
    start, end = reports.year_bounds(THIS_YEAR)
    assert D(first["quantity"]) + D(second["quantity"]) == outflows(carol, "BTC", start, end)
    assert D(first["proceeds_usdt"]) + D(second["proceeds_usdt"]) == sum(
        (t.quote_amount - t.taker_fee for t in (sell1, sell2)), D(0)
    )
    # what the sales' lots cost and what is still open cost what came in: the deposit at its
    # value then and the USDT the buys paid, by the ledger
    paid = Transfer.objects.filter(
        debit_account__kind=AccountKind.USER,
        debit_account__user=carol,
        asset="USDT",
        code="spot_fill",
        kind__in=[TransferKind.POSTED, TransferKind.POST_PENDING],
    )
    assert sum((t.amount for t in paid), D(0)) == D("30400")
    still_open = selectors.lots_of(user=carol, asset="BTC", method="fifo").cost_usdt
    assert D(first["cost_basis_usdt"]) + D(second["cost_basis_usdt"]) + still_open == D("25000") + D("30400")
    # last year: a deposit, nothing disposed of
    previous = get(carol, "tax", year=last_year).json()
    assert previous["disposals"] == [] and D(previous["gain_usdt"]) == 0


@pytest.mark.django_db(transaction=True)
def test_the_tax_report_of_a_full_history_matches_the_portfolio_and_the_ledger(world):
    bob = world["bob"]
    start, end = reports.year_bounds(THIS_YEAR)
    for method in ("fifo", "average"):
        body = get(bob, "tax", year=THIS_YEAR, method=method).json()
        pnl = selectors.pnl_of(user=bob, start=start, end=end, method=method)
        assert D(body["gain_usdt"]) == pnl.total_usdt
        assert sum((D(d["gain_usdt"]) for d in body["disposals"]), D(0)) == pnl.total_usdt
        assert D(body["proceeds_usdt"]) - D(body["cost_basis_usdt"]) == pnl.total_usdt
        kinds = {d["kind"] for d in body["disposals"]}
        assert {"sell", "withdrawal", "fee", "option_close"} <= kinds, kinds
        # every BTC and ETH that left bob's accounts is a disposal, and nothing else is
        for asset in ("BTC", "ETH"):
            disposed = sum((D(d["quantity"]) for d in body["disposals"] if d["asset"] == asset), D(0))
            assert disposed == outflows(bob, asset, start, end), (method, asset)
        # the option sold back: its proceeds are what the counter paid
        closes = [d for d in body["disposals"] if d["kind"] == "option_close"]
        paid = OptionOrder.objects.get(user=bob, side="sell")
        assert [(D(d["quantity"]), D(d["proceeds_usdt"])) for d in closes] == [(paid.contracts, paid.total_usdt)]
        for d in body["disposals"]:
            if d["asset"] != "USDT":
                assert d["acquired"] and all(moment <= d["disposed_at"] for moment in d["acquired"]), d

    response = get(bob, "tax", year=THIS_YEAR, format="csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="tax-{THIS_YEAR}-fifo.csv"'
    parsed = read_sections(response.content.decode())
    assert parsed["heading"]["tax_report"] == bob.email and parsed["heading"]["method"] == "fifo"
    json_body = get(bob, "tax", year=THIS_YEAR).json()
    assert [row["reference"] for row in parsed["disposals"]] == [d["reference"] for d in json_body["disposals"]]
    totals = {row["asset"]: row for row in parsed["totals"]}
    assert D(totals["total"]["gain_usdt"]) == D(json_body["gain_usdt"]) == D(parsed["heading"]["net_gain_usdt"])

    pdf = get(bob, "tax", year=THIS_YEAR, format="pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == f'attachment; filename="tax-{THIS_YEAR}-fifo.pdf"'
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert f"capital gains {THIS_YEAR}" in text and bob.email in text
    assert "Disposals" in text and "Totals by asset" in text
    assert reports.amount_text("USDT", D(json_body["gain_usdt"])) in text


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_input_is_refused_in_the_error_format(user):
    for path, params, field in (
        ("trades", {"year": "2008"}, "year"),
        ("trades", {"year": str(THIS_YEAR + 1)}, "year"),
        ("trades", {"year": "twenty"}, "year"),
        ("trades", {"year": "2025.0"}, "year"),
        ("trades", {"format": "pdf"}, "format"),
        ("trades", {"format": "xls"}, "format"),
        ("tax", {"year": "99999999999999999999"}, "year"),
        ("tax", {"year": "-1"}, "year"),
        ("tax", {"method": "lifo"}, "method"),
        ("tax", {"format": "koinly"}, "format"),
    ):
        response = get(user, path, **params)
        assert response.status_code == 400, (path, params, response.content)
        body = response.json()
        assert body["error"]["code"] == "validation_error" and field in body["error"]["fields"], (params, body)
    for path in ("trades", "tax"):
        assert client_for(None).get(f"/api/v1/reports/{path}").status_code == 401
    # the bounds themselves are years
    assert get(user, "tax", year=reports.FIRST_YEAR, method="AVERAGE", format="JSON").status_code == 200
    assert get(user, "trades", year=THIS_YEAR).json()["trades"] == []


# --- the regulator's daily report ----------------------------------------------------------------------------


def read_report(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.django_db(transaction=True)
def test_the_daily_transaction_report_is_one_row_per_trade_and_trader(world, tmp_path, capsys):
    today = timezone.now().astimezone(UTC).date()
    start, end = reports.day_bounds(today)
    # one of the day's book trades moved to yesterday: in yesterday's report, not today's
    moved = SpotTrade.objects.order_by("pk").first()
    SpotTrade.objects.filter(pk=moved.pk).update(created_at=start - timedelta(minutes=5))

    out = tmp_path / "transactions.csv"
    call_command("report_transactions", "--date", today.isoformat(), "--out", str(out), "--progress-every", "2")
    said = capsys.readouterr().out
    rows = read_report(out)
    spot = list(SpotTrade.objects.filter(created_at__gte=start, created_at__lt=end))
    venue = VenueOrder.objects.filter(filled_quantity__gt=0, closed_at__gte=start, closed_at__lt=end)
    rfq = RfqQuote.objects.filter(accepted_at__gte=start, accepted_at__lt=end)
    options = OptionOrder.objects.filter(created_at__gte=start, created_at__lt=end)
    expected = 2 * len(spot) + venue.count() + rfq.count() + options.count()
    assert len(rows) == expected and f"{expected} rows for {today}" in said
    assert "... 2 rows" in said  # progress on the way
    assert list(rows[0]) == reports.REGULATOR_HEADER
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)

    # every book trade: a row for the maker and one for the taker, as the trades table has them
    users = {u.pk: u for u in (world["alice"], world["bob"], world["maker"])}
    by_trade: dict[str, list[dict]] = {}
    for row in rows:
        by_trade.setdefault(row["trade_id"], []).append(row)
    for trade in spot:
        maker, taker = by_trade[f"spot:{trade.pk}"]
        for row, user_id, side, fee in (
            (maker, trade.maker_user_id, "sell" if trade.taker_side == "buy" else "buy", trade.maker_fee),
            (taker, trade.taker_user_id, trade.taker_side, trade.taker_fee),
        ):
            assert row["user_reference"] == reports.user_reference(user_id)
            assert (row["instrument"], row["side"], row["venue"]) == (trade.symbol, side, "meridian")
            assert (D(row["price"]), D(row["quantity"]), D(row["notional_usdt"]), D(row["fee"])) == (
                trade.price,
                trade.quantity,
                trade.quote_amount,
                fee,
            )
            assert row["time"] == trade.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert f"spot:{moved.pk}" not in by_trade
    assert {row["venue"] for row in rows} >= {"meridian", "simx", "meridian-rfq", "meridian-options"}

    # pseudonymous: no email anywhere, one stable reference per trader
    text = out.read_text()
    for user in users.values():
        assert user.email not in text
    assert len({reports.user_reference(pk) for pk in users}) == 3
    assert reports.user_reference(world["bob"].pk) == reports.user_reference(world["bob"].pk)
    bob_rows = [row for row in rows if row["user_reference"] == reports.user_reference(world["bob"].pk)]
    assert {row["trade_id"] for row in bob_rows} == trade_ids(world["bob"]) - {f"spot:{moved.pk}"}

    # yesterday's report holds the moved trade; to standard output, the count on standard error
    call_command("report_transactions", "--date", (today - timedelta(days=1)).isoformat())
    captured = capsys.readouterr()
    yesterday = list(csv.DictReader(io.StringIO(captured.out)))
    assert {row["trade_id"] for row in yesterday} == {f"spot:{moved.pk}"} and len(yesterday) == 2
    assert "2 rows for" in captured.err


@pytest.mark.django_db
def test_the_daily_report_refuses_a_bad_day(tmp_path):
    for day in ("2026-13-01", "01/02/2026", "yesterday", (date.today() + timedelta(days=2)).isoformat()):
        with pytest.raises(CommandError):
            call_command("report_transactions", "--date", day, "--out", str(tmp_path / "x.csv"))
    assert not list(tmp_path.iterdir())  # nothing half written
    call_command("report_transactions", "--date", "2020-02-29", "--out", str(tmp_path / "empty.csv"))
    assert read_report(tmp_path / "empty.csv") == []
    assert (tmp_path / "empty.csv").read_text().startswith(",".join(reports.REGULATOR_HEADER))


# --- the Portfolio page ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_portfolio_page_links_the_reports_and_they_download(user):
    browser = Client()
    browser.force_login(user)
    html = browser.get("/portfolio/").content.decode()
    links = dict(re.findall(r'data-report="([a-z-]+)" href="([^"]+)"', html))
    assert links == {
        "tax-pdf": f"/api/v1/reports/tax?year={THIS_YEAR}&amp;format=pdf",
        "tax-csv": f"/api/v1/reports/tax?year={THIS_YEAR}&amp;format=csv",
        "trades-csv": f"/api/v1/reports/trades?year={THIS_YEAR}&amp;format=csv",
        "tax-pdf-last": f"/api/v1/reports/tax?year={THIS_YEAR - 1}&amp;format=pdf",
    }
    for href in links.values():
        response = browser.get(href.replace("&amp;", "&"))  # signed in by the page's session
        assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment;"), href
