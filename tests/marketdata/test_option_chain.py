"""GET /api/v1/options/chain (API.md "USDT-mode options" › "The chain answers"): the shape,
decimal strings, Black-76 marks from the smile, the counter's spread, parity, greeks, the
expiry filter and the errors (400 bad input, 404 unknown_expiry, 503 index_stale)."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone as dj_timezone

from marketdata.models import IndexPrint, Instrument, InstrumentKind
from marketdata.options import spread_params
from marketdata.pricing import black76_price, black76_valuation, default_smile, year_fraction
from marketdata.pricing.smile import DEFAULT_ATM_VOL
from marketdata.pricing.spread import half_spread
from marketdata.services import instruments_sync
from tests.accounts.helpers import assert_error

pytestmark = pytest.mark.django_db

UTC = UTC
INDEX = {"BTC": Decimal("65000.12"), "ETH": Decimal("3400.55")}
URL = "/api/v1/options/chain"
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
LEG_FIELDS = {
    "series",
    "mark_usdt",
    "mark_underlying",
    "bid_usdt",
    "ask_usdt",
    "iv",
    "delta",
    "gamma",
    "vega",
    "theta",
    "open_interest",
}
NUMERIC_LEG_FIELDS = LEG_FIELDS - {"series"}
CENT = Decimal("0.01")


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


def dec(text) -> Decimal:
    assert isinstance(text, str) and DECIMAL.match(text), f"not a decimal string: {text!r}"
    return Decimal(text)


def print_index(underlying: str, price: Decimal | None, *, ago: float = 0.0, stale: bool = False) -> IndexPrint:
    return IndexPrint.objects.create(
        underlying=underlying, ts=dj_timezone.now() - timedelta(seconds=ago), price=price, stale=stale, sources={}
    )


@pytest.fixture
def listed():
    """A fresh index for both underlyings and the series the calendar calls for."""
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


def chain(api, **params):
    response = api.get(URL, params)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def atm_row(block: dict, index: Decimal) -> dict:
    return min(block["rows"], key=lambda row: abs(Decimal(row["strike"]) - index))


def relative_spread(leg: dict) -> Decimal:
    """The ask's half-spread as a share of the mark."""
    mark = Decimal(leg["mark_usdt"])
    return (Decimal(leg["ask_usdt"]) - mark) / mark


# --- the shape and the numbers ------------------------------------------------------------------


def test_btc_chain_has_the_api_md_shape_in_decimal_strings(api, listed):
    body = chain(api, underlying="BTC")
    assert body["underlying"] == "BTC"
    assert dec(body["index_price"]) == INDEX["BTC"]
    assert body["expiries"], body
    live = Instrument.objects.filter(kind=InstrumentKind.OPTION, base="BTC", active=True)
    assert sorted(parse_time(block["expiry"]) for block in body["expiries"]) == sorted(
        set(live.values_list("expiry", flat=True))
    )
    seen = set()
    for block in body["expiries"]:
        expiry = parse_time(block["expiry"])
        assert expiry.hour == 8 and expiry.minute == 0
        strikes = [dec(row["strike"]) for row in block["rows"]]
        assert strikes == sorted(strikes) and len(strikes) == len(set(strikes)) > 5
        assert min(strikes) < INDEX["BTC"] < max(strikes)
        for row in block["rows"]:
            assert set(row) == {"strike", "call", "put"}, row
            for key, letter in (("call", "C"), ("put", "P")):
                leg = row[key]
                assert set(leg) >= LEG_FIELDS, leg
                assert leg["series"] == f"BTC-{expiry:%Y%m%d}-{row['strike']}-{letter}"
                for field in NUMERIC_LEG_FIELDS:
                    dec(leg[field])
                seen.add(leg["series"])
    # every live BTC series appears once, nothing else does
    assert seen == set(live.values_list("symbol", flat=True))


def test_marks_are_black76_on_the_index_with_the_smile_vol(api, listed):
    for underlying in ("BTC", "ETH"):
        body = chain(api, underlying=underlying)
        index = dec(body["index_price"])
        assert index == INDEX[underlying]
        now = parse_time(body["time"])
        for block in body["expiries"]:
            years = year_fraction(now, parse_time(block["expiry"]))
            assert years > 0 and abs(years - float(block["years"])) < 2e-6
            smile = default_smile(DEFAULT_ATM_VOL[underlying], years)
            for row in block["rows"]:
                strike = dec(row["strike"])
                vol = smile.vol(float(strike), float(index))
                for kind in ("call", "put"):
                    leg = row[kind]
                    mark, iv = dec(leg["mark_usdt"]), dec(leg["iv"])
                    # the IV shown is the smile's vol at this strike (4 places)
                    assert abs(float(iv) - vol) <= 0.5e-4 + 1e-12, (leg["series"], iv, vol)
                    # the mark is Black-76 at the smile vol, to the cent
                    exact = black76_price(kind, float(index), float(strike), years, vol)
                    assert abs(float(mark) - exact) <= 0.01, (leg["series"], mark, exact)
                    # ... and at the IV the chain shows, to the cent plus what rounding the
                    # IV to 4 places moves the price (vega is USDT per vol point = 0.01)
                    shown = black76_price(kind, float(index), float(strike), years, float(iv))
                    slack = abs(float(dec(leg["vega"]))) * 0.005 + 0.01
                    assert abs(float(mark) - shown) <= slack, (leg["series"], mark, shown, slack)
                    # mark in the underlying, Deribit-style, 8 places
                    in_underlying = dec(leg["mark_underlying"])
                    assert -in_underlying.as_tuple().exponent <= 8
                    assert in_underlying == (mark / index).quantize(Decimal("0.00000001"))
                    # the greeks agree with Black-76 at the smile vol
                    valuation = black76_valuation(kind, float(index), float(strike), years, vol)
                    assert abs(float(dec(leg["delta"])) - valuation.delta) <= 0.5e-4 + 1e-9
                    assert abs(float(dec(leg["vega"])) - valuation.vega) <= 0.5e-4 + 1e-9
                    assert abs(float(dec(leg["theta"])) - valuation.theta) <= 0.5e-4 + 1e-9
                    assert abs(float(dec(leg["gamma"])) - valuation.gamma) <= 0.5e-8 + 1e-15


def test_put_call_parity_holds_per_strike(api, listed):
    for underlying in ("BTC", "ETH"):
        body = chain(api, underlying=underlying)
        forward = dec(body["index_price"])  # no rates: the index is the forward
        rows = 0
        for block in body["expiries"]:
            for row in block["rows"]:
                call, put = dec(row["call"]["mark_usdt"]), dec(row["put"]["mark_usdt"])
                strike = dec(row["strike"])
                assert abs((call - put) - (forward - strike)) <= Decimal("0.02"), (row["call"]["series"], call, put)
                rows += 1
        assert rows > 50


def test_bid_mark_ask_and_a_wider_spread_near_expiry(api, listed, settings):
    for underlying in ("BTC", "ETH"):
        body = chain(api, underlying=underlying)
        index = dec(body["index_price"])
        now = parse_time(body["time"])
        params = spread_params(underlying)
        fee = index * Decimal(repr(settings.OPTION_BID_INTRINSIC_FEE_BPS)) / 10_000
        for block in body["expiries"]:
            days = year_fraction(now, parse_time(block["expiry"])) * 365
            for row in block["rows"]:
                strike = dec(row["strike"])
                for kind in ("call", "put"):
                    leg = row[kind]
                    bid, mark, ask = dec(leg["bid_usdt"]), dec(leg["mark_usdt"]), dec(leg["ask_usdt"])
                    assert Decimal(0) <= bid <= mark <= ask, leg
                    assert ask > bid, leg  # the counter always earns at least a tick
                    for price in (bid, mark, ask):
                        assert price == price.quantize(CENT), leg
                    # never a bid below intrinsic value less the fee
                    intrinsic = max(index - strike if kind == "call" else strike - index, Decimal(0))
                    assert bid >= intrinsic - fee, (leg, intrinsic)
                    # the ask's half-spread is the vega model's, from the chain's own greeks
                    half = half_spread(
                        price=float(mark),
                        vega=float(leg["vega"]),
                        delta=float(leg["delta"]),
                        forward=float(index),
                        days=days,
                        params=params,
                    )
                    assert abs(float(ask - mark) - max(float(half), 0.01)) <= 0.0101, (leg, float(half))
        blocks = body["expiries"]
        shortest, longest = blocks[0], blocks[-1]
        longest_expiry = parse_time(longest["expiry"])
        # the longest listed expiry is a quarterly: the last Friday of Mar/Jun/Sep/Dec
        assert longest_expiry.month in (3, 6, 9, 12) and longest_expiry.weekday() == calendar.FRIDAY
        assert (longest_expiry + timedelta(days=7)).month != longest_expiry.month
        assert year_fraction(now, parse_time(shortest["expiry"])) <= 1 / 365 + 1e-9  # a daily
        for kind in ("call", "put"):
            # at the money (where the premium is time value) the nearest expiry's spread is the
            # wider share (unless minutes from expiry have made it worth cents: then the next)
            short_leg = next(
                atm_row(block, index)[kind]
                for block in blocks
                if Decimal(atm_row(block, index)[kind]["mark_usdt"]) >= 1
            )
            long_leg = atm_row(longest, index)[kind]
            assert relative_spread(short_leg) > relative_spread(long_leg), (short_leg, long_leg)


def test_greeks_have_the_right_signs(api, listed):
    for underlying in ("BTC", "ETH"):
        body = chain(api, underlying=underlying)
        index = dec(body["index_price"])
        now = parse_time(body["time"])
        for block in body["expiries"]:
            years = year_fraction(now, parse_time(block["expiry"]))
            far_enough = years >= 1 / 365
            atm = atm_row(block, index)
            if years < 1 / (365 * 24):  # in its last hour even the nearest strike can be far in sd
                atm = None
            for row in block["rows"]:
                call, put = row["call"], row["put"]
                call_delta, put_delta = dec(call["delta"]), dec(put["delta"])
                if far_enough or row is atm:
                    assert Decimal(0) < call_delta < Decimal(1), call
                    assert Decimal(-1) < put_delta < Decimal(0), put
                else:  # hours from expiry, the wings' deltas can round to 0 or +-1
                    assert Decimal(0) <= call_delta <= Decimal(1), call
                    assert Decimal(-1) <= put_delta <= Decimal(0), put
                # Black-76 without rates: delta(call) - delta(put) = 1
                assert abs(call_delta - put_delta - 1) <= Decimal("0.0002"), row
                for leg in (call, put):
                    assert dec(leg["gamma"]) >= 0 and dec(leg["vega"]) >= 0 and dec(leg["theta"]) <= 0, leg
                assert call["iv"] == put["iv"] and call["gamma"] == put["gamma"] and call["vega"] == put["vega"]
            if atm is not None:
                assert dec(atm["call"]["gamma"]) > 0 and dec(atm["call"]["vega"]) > 0 and dec(atm["call"]["theta"]) < 0


def test_eth_chain_and_lowercase_underlying(api, listed):
    body = chain(api, underlying="eth")
    assert body["underlying"] == "ETH" and dec(body["index_price"]) == INDEX["ETH"]
    series = [row["call"]["series"] for block in body["expiries"] for row in block["rows"]]
    assert series and all(name.startswith("ETH-") and name.endswith("-C") for name in series)


# --- the expiry filter -----------------------------------------------------------------------------


def test_expiry_filters_to_that_expiry(api, listed):
    everything = chain(api, underlying="BTC")
    assert len(everything["expiries"]) > 3
    wanted = everything["expiries"][2]
    expiry = parse_time(wanted["expiry"])
    for raw in (f"{expiry:%Y-%m-%d}", f"{expiry:%Y%m%d}", wanted["expiry"], f"{expiry:%Y-%m-%d}T08:00:00+00:00"):
        body = chain(api, underlying="BTC", expiry=raw)
        assert [block["expiry"] for block in body["expiries"]] == [wanted["expiry"]], raw
        assert [row["strike"] for row in body["expiries"][0]["rows"]] == [row["strike"] for row in wanted["rows"]]
        assert body["index_price"] == everything["index_price"]


def test_unknown_expiry_is_404(api, listed):
    live = set(Instrument.objects.filter(kind=InstrumentKind.OPTION).values_list("expiry", flat=True))
    day = dj_timezone.now().date() + timedelta(days=1000)
    assert datetime(day.year, day.month, day.day, 8, tzinfo=UTC) not in live
    assert_error(api.get(URL, {"underlying": "BTC", "expiry": day.isoformat()}), 404, "unknown_expiry")
    # a listed date at another time of day is no expiry either
    listed_day = min(live)
    assert_error(
        api.get(URL, {"underlying": "BTC", "expiry": f"{listed_day:%Y-%m-%d}T09:00:00Z"}), 404, "unknown_expiry"
    )
    # an expiry in the past
    assert_error(api.get(URL, {"underlying": "BTC", "expiry": "2020-01-03"}), 404, "unknown_expiry")


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "2026-13-01",
        "2026-02-30",
        "20261399",
        "2026-12-25T25:00:00Z",
        "12/25/2026",
        "2026-12-25T08:00:00+25:00",
        "\x00",
    ],
)
def test_bad_expiry_is_400(api, listed, raw):
    assert_error(api.get(URL, {"underlying": "BTC", "expiry": raw}), 400, "validation_error", field="expiry")


@pytest.mark.parametrize("raw", ["9999-12-31T23:00:00-09:00", "0001-01-01T00:00:00+01:00"])
def test_an_expiry_beyond_the_calendar_is_a_client_error_not_a_500(api, listed, raw):
    response = api.get(URL, {"underlying": "BTC", "expiry": raw})
    assert response.status_code in (400, 404), response.content[:300]
    assert response.json()["error"]["code"] in ("validation_error", "unknown_expiry")


@pytest.mark.parametrize("underlying", ["DOGE", "", "BTC-USDT", "USDT", "\x00"])
def test_unknown_underlying_is_400(api, listed, underlying):
    assert_error(api.get(URL, {"underlying": underlying}), 400, "validation_error", field="underlying")


def test_missing_underlying_is_400(api, listed):
    assert_error(api.get(URL), 400, "validation_error", field="underlying")


# --- the index must be live --------------------------------------------------------------------


def test_a_stale_index_answers_503(api, listed):
    print_index("BTC", None, stale=True)
    error = assert_error(api.get(URL, {"underlying": "BTC"}), 503, "index_stale")
    assert "BTC" in error["message"]
    # the other underlying still answers
    assert chain(api, underlying="ETH")["underlying"] == "ETH"
    # a stale print that still carries a price is stale all the same
    print_index("ETH", INDEX["ETH"], stale=True)
    assert_error(api.get(URL, {"underlying": "ETH"}), 503, "index_stale")
    # a fresh print again: prices are back
    print_index("BTC", Decimal("65100"))
    assert dec(chain(api, underlying="BTC")["index_price"]) == Decimal("65100")


def test_an_old_index_answers_503(api, listed, settings):
    IndexPrint.objects.all().delete()
    max_age = settings.INDEX_MAX_AGE_SECONDS
    print_index("BTC", INDEX["BTC"], ago=max_age + 5)
    print_index("ETH", INDEX["ETH"], ago=max(max_age - 5, 0))
    assert_error(api.get(URL, {"underlying": "BTC"}), 503, "index_stale")
    assert_error(api.get(URL, {"underlying": "BTC", "expiry": "2020-01-03"}), 503, "index_stale")
    assert chain(api, underlying="ETH")["underlying"] == "ETH"
    # the limit is the setting
    settings.INDEX_MAX_AGE_SECONDS = max_age + 60
    assert dec(chain(api, underlying="BTC")["index_price"]) == INDEX["BTC"]


def test_no_index_at_all_answers_503(api, listed):
    IndexPrint.objects.all().delete()
    for underlying in ("BTC", "ETH"):
        assert_error(api.get(URL, {"underlying": underlying}), 503, "index_stale")


def test_no_series_listed_is_an_empty_chain(api):
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    body = chain(api, underlying="BTC")
    assert body["underlying"] == "BTC" and body["expiries"] == []
