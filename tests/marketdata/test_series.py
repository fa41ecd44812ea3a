"""The option series calendar, strike grid and series symbols (pure: no database)."""

from __future__ import annotations

import calendar
import itertools
import math
import random
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from marketdata.series import (
    MAX_STRIKES,
    REFERENCE_VOL,
    STRIKE_STEPS,
    SeriesSpec,
    expiries,
    parse_series_symbol,
    series_for,
    series_symbol,
    strike_grid,
)

UTC = UTC


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def eight(*days: str) -> list[datetime]:
    return [at(f"{day}T08:00:00") for day in days]


def is_last_friday(day: date) -> bool:
    return day.weekday() == calendar.FRIDAY and (day + timedelta(days=7)).month != day.month


def reference_expiries(now: datetime) -> list[datetime]:
    """The calendar rule written another way: walk the days one by one and classify them."""
    days = [now.date() + timedelta(days=k) for k in range(400)]
    upcoming = [d for d in days if datetime.combine(d, time(8, 0, tzinfo=UTC)) > now]
    daily = upcoming[:3]
    weekly = [d for d in upcoming if d.weekday() == calendar.FRIDAY][:4]
    monthly = [d for d in upcoming if is_last_friday(d)][:3]
    quarterly = [d for d in upcoming if is_last_friday(d) and d.month in (3, 6, 9, 12)][:3]
    return sorted({datetime.combine(d, time(8, 0, tzinfo=UTC)) for d in daily + weekly + monthly + quarterly})


# --- expiries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now, expected",
    [
        pytest.param(
            # A Friday before 08:00: today is a daily and a weekly expiry; the last Friday of
            # November (27th) is both a weekly and the monthly.
            "2026-11-20T07:59:59",
            eight(
                "2026-11-20",
                "2026-11-21",
                "2026-11-22",
                "2026-11-27",
                "2026-12-04",
                "2026-12-11",
                "2026-12-25",
                "2027-01-29",
                "2027-03-26",
                "2027-06-25",
            ),
            id="friday-before-0800",
        ),
        pytest.param(
            # The same Friday at 08:00 sharp: today's expiry is no longer "after now".
            "2026-11-20T08:00:00",
            eight(
                "2026-11-21",
                "2026-11-22",
                "2026-11-23",
                "2026-11-27",
                "2026-12-04",
                "2026-12-11",
                "2026-12-18",
                "2026-12-25",
                "2027-01-29",
                "2027-03-26",
                "2027-06-25",
            ),
            id="friday-at-0800",
        ),
        pytest.param(
            # The month's last Friday, after 08:00: November's monthly is gone, so the
            # monthlies are Dec, Jan, Feb.
            "2026-11-27T09:00:00",
            eight(
                "2026-11-28",
                "2026-11-29",
                "2026-11-30",
                "2026-12-04",
                "2026-12-11",
                "2026-12-18",
                "2026-12-25",
                "2027-01-29",
                "2027-02-26",
                "2027-03-26",
                "2027-06-25",
            ),
            id="month-end-friday-after-0800",
        ),
        pytest.param(
            # The quarter's last Friday at expiry time: March's quarterly is gone.
            "2026-03-27T08:00:00",
            eight(
                "2026-03-28",
                "2026-03-29",
                "2026-03-30",
                "2026-04-03",
                "2026-04-10",
                "2026-04-17",
                "2026-04-24",
                "2026-05-29",
                "2026-06-26",
                "2026-09-25",
                "2026-12-25",
            ),
            id="quarter-end-friday",
        ),
        pytest.param(
            # Quarter end (30 June) late in the day: July, August, September monthlies.
            "2026-06-30T23:00:00",
            eight(
                "2026-07-01",
                "2026-07-02",
                "2026-07-03",
                "2026-07-10",
                "2026-07-17",
                "2026-07-24",
                "2026-07-31",
                "2026-08-28",
                "2026-09-25",
                "2026-12-25",
                "2027-03-26",
            ),
            id="quarter-end-day",
        ),
        pytest.param(
            # 31 December: every series of the new year, across the year boundary.
            "2026-12-31T12:00:00",
            eight(
                "2027-01-01",
                "2027-01-02",
                "2027-01-03",
                "2027-01-08",
                "2027-01-15",
                "2027-01-22",
                "2027-01-29",
                "2027-02-26",
                "2027-03-26",
                "2027-06-25",
                "2027-09-24",
            ),
            id="31-december",
        ),
        pytest.param(
            # Before 08:00 on a Monday.
            "2026-11-23T03:00:00",
            eight(
                "2026-11-23",
                "2026-11-24",
                "2026-11-25",
                "2026-11-27",
                "2026-12-04",
                "2026-12-11",
                "2026-12-18",
                "2026-12-25",
                "2027-01-29",
                "2027-03-26",
                "2027-06-25",
            ),
            id="monday-before-0800",
        ),
    ],
)
def test_expiries_on_chosen_days(now, expected):
    assert expiries(at(now)) == expected
    assert reference_expiries(at(now)) == expected


def test_expiries_accept_another_time_zone_and_answer_in_utc():
    # 2026-11-20 09:30 in UTC+2 is 07:30 UTC: today's 08:00 UTC expiry is still ahead.
    plus_two = timezone(timedelta(hours=2))
    now = datetime(2026, 11, 20, 9, 30, tzinfo=plus_two)
    found = expiries(now)
    assert found[0] == at("2026-11-20T08:00:00")
    assert all(e.utcoffset() == timedelta(0) for e in found)


def test_expiries_invariants_over_many_times():
    rnd = random.Random(7)
    start = at("2025-01-01T00:00:00")
    for _ in range(400):
        now = start + timedelta(seconds=rnd.randrange(0, 4 * 365 * 86400))
        found = expiries(now)
        assert found == reference_expiries(now), now
        assert found == sorted(set(found)), now
        assert all(e > now for e in found), now
        assert all(
            (e.hour, e.minute, e.second, e.microsecond) == (8, 0, 0, 0) and e.utcoffset() == timedelta(0) for e in found
        )
        days = [e.date() for e in found]
        # the next three days' 08:00
        assert days[:3] == [found[0].date() + timedelta(days=k) for k in range(3)], now
        assert found[0] - now <= timedelta(days=1), now
        fridays = [d for d in days if d.weekday() == calendar.FRIDAY]
        assert len(fridays) >= 4
        assert fridays[:4] == [fridays[0] + timedelta(days=7 * k) for k in range(4)], now
        assert fridays[0] - now.date() < timedelta(days=8)
        last_fridays = [d for d in days if is_last_friday(d)]
        assert len(last_fridays) >= 3
        quarterlies = [d for d in last_fridays if d.month in (3, 6, 9, 12)]
        assert len(quarterlies) == 3, now
        # the furthest listed expiry is the third quarterly: less than ten months away
        assert found[-1] == datetime.combine(quarterlies[-1], time(8, 0, tzinfo=UTC))
        assert found[-1] - now < timedelta(days=300)
        # every listed day is a daily, a Friday, or both
        assert all(d in days[:3] or d.weekday() == calendar.FRIDAY for d in days)
        assert 8 <= len(found) <= 13


# --- strike grid ------------------------------------------------------------------------

TENORS = [0.0, 1 / 365, 3 / 365, 7 / 365, 30 / 365, 0.25, 0.5, 0.8]


@pytest.mark.parametrize(
    "underlying, index",
    [("BTC", Decimal("65000")), ("ETH", Decimal("3400")), ("BTC", Decimal("123456.78")), ("ETH", Decimal("1850.25"))],
)
def test_strike_grid_is_round_centred_and_widens_with_time(underlying, index):
    widths = []
    for years in TENORS:
        grid = strike_grid(underlying, index, years)
        assert 5 <= len(grid) <= MAX_STRIKES + 1, (years, grid)
        step = grid[1] - grid[0]
        assert step in STRIKE_STEPS[underlying]
        assert all(b - a == step for a, b in itertools.pairwise(grid)), grid
        assert all(strike % step == 0 and strike > 0 for strike in grid)
        # Centred (in log terms) on the index: exactly the multiples of the step within
        # about ±2.5 standard deviations to expiry, with the index inside.
        spread = max(2.5 * REFERENCE_VOL[underlying] * math.sqrt(max(years, 1 / 365)), 0.05)
        low, high = float(index) * math.exp(-spread), float(index) * math.exp(spread)
        assert grid[0] < index < grid[-1]
        assert low <= float(grid[0]) and float(grid[-1]) <= high, (years, grid[0], grid[-1], low, high)
        assert float(grid[0] - step) < low or grid[0] == step
        assert float(grid[-1] + step) > high
        assert min(abs(strike - index) for strike in grid) <= step
        widths.append(grid[-1] - grid[0])
    # Time to expiry below one day counts as one day; beyond that, the grid widens.
    assert widths[0] == widths[1]
    assert all(a < b for a, b in itertools.pairwise(widths[1:])), widths


def test_strike_grid_steps_up_to_stay_within_the_cap():
    near = strike_grid("BTC", Decimal("65000"), 1 / 365)
    far = strike_grid("BTC", Decimal("65000"), 0.8)
    assert far[1] - far[0] > near[1] - near[0]
    assert len(far) <= MAX_STRIKES + 1


def test_series_for_lists_calls_and_puts_on_every_expiry():
    now = at("2026-11-20T10:00:00")
    specs = series_for("BTC", Decimal("65000"), now)
    by_expiry: dict[datetime, list[SeriesSpec]] = {}
    for spec in specs:
        by_expiry.setdefault(spec.expiry, []).append(spec)
    assert sorted(by_expiry) == expiries(now)
    for expiry, group in by_expiry.items():
        years = (expiry - now).total_seconds() / (365 * 86400)
        strikes = strike_grid("BTC", Decimal("65000"), years)
        assert sorted((s.strike, s.option_type) for s in group) == sorted((k, t) for k in strikes for t in "CP")
        assert len(strikes) <= MAX_STRIKES + 1
    symbols = [spec.symbol for spec in specs]
    assert len(symbols) == len(set(symbols))
    assert all(spec.underlying == "BTC" for spec in specs)


# --- symbols ----------------------------------------------------------------------------


def test_series_symbol_format():
    expiry = at("2026-12-25T08:00:00")
    assert series_symbol("BTC", expiry, Decimal("100000"), "C") == "BTC-20261225-100000-C"
    # Whatever the Decimal's exponent, the strike is written plainly, without trailing zeros.
    assert series_symbol("BTC", expiry, Decimal("1E+5"), "P") == "BTC-20261225-100000-P"
    assert series_symbol("BTC", expiry, Decimal("100000.00"), "C") == "BTC-20261225-100000-C"
    assert series_symbol("ETH", at("2027-03-26T08:00:00"), Decimal("2500"), "P") == "ETH-20270326-2500-P"
    assert series_symbol("ETH", expiry, Decimal("12.50"), "C") == "ETH-20261225-12.5-C"
    spec = SeriesSpec("BTC", expiry, Decimal("5000") * 20, "C")
    assert spec.symbol == "BTC-20261225-100000-C"


def test_parse_series_symbol_round_trips():
    spec = parse_series_symbol("BTC-20261225-100000-C")
    assert spec == SeriesSpec("BTC", at("2026-12-25T08:00:00"), Decimal("100000"), "C")
    assert spec.expiry.tzinfo is not None and spec.expiry.utcoffset() == timedelta(0)
    assert parse_series_symbol("ETH-20270326-2500-P") == SeriesSpec(
        "ETH", at("2027-03-26T08:00:00"), Decimal("2500"), "P"
    )
    for underlying, index in (("BTC", Decimal("65000")), ("ETH", Decimal("3400"))):
        for spec in series_for(underlying, index, at("2026-12-31T12:00:00")):
            assert parse_series_symbol(spec.symbol) == spec
            assert parse_series_symbol(spec.symbol).symbol == spec.symbol


@pytest.mark.parametrize(
    "symbol",
    [
        "BTC-USDT",
        "ETH-USDT",
        "",
        "BTC",
        "BTC-20261225-100000",
        "BTC-20261225-100000-X",
        "BTC-20261225-100000-c",
        "btc-20261225-100000-C",
        "BTC-20261225-100000-C-X",
        "BTC--100000-C",
        "-20261225-100000-C",
        "BTC-2026122-100000-C",  # seven digits: strptime alone would read 2 December
        "BTC-202612250-100000-C",
        "BTC-20261325-100000-C",  # month 13
        "BTC-20260230-100000-C",  # 30 February
        "BTC-2026-12-25-100000-C",
        "BTC-20261225-abc-C",
        "BTC-20261225--100000-C",
        "BTC-20261225-0-C",
        "BTC-20261225-NaN-C",
        "BTC-20261225-Infinity-P",
        "BTC-20261225-1e5-C",
        "BTC-20261225-100000.0-C",  # not the canonical form: would not write back to itself
        "BTC-20261225- 100000-C",
    ],
)
def test_parse_series_symbol_refuses_what_is_not_a_series(symbol):
    assert parse_series_symbol(symbol) is None
