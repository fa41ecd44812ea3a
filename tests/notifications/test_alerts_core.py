"""The price alert evaluator on its own: boundaries, frequencies and cooldown, change over a
window, and the sorted book firing exactly what a scan of every alert fires."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.alerts import (
    CHANGE_PCT,
    EVERY_TIME,
    ONCE,
    ONCE_PER_MINUTE,
    PRICE_ABOVE,
    PRICE_BELOW,
    Alert,
    AlertBook,
    ScanBook,
)

D = Decimal
T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)


def alert(pk, condition=PRICE_ABOVE, value="100", frequency=ONCE, symbol="BTC-USDT", window=None):
    return Alert(id=pk, symbol=symbol, condition=condition, value=D(value), frequency=frequency, window=window)


def fired_ids(book, price, at=T0, symbol="BTC-USDT"):
    return sorted(f.alert.id for f in book.tick(symbol, D(price), at))


def test_above_fires_exactly_at_the_threshold_and_not_a_tick_short():
    book = AlertBook(cooldown=60)
    book.add(alert(1, PRICE_ABOVE, "100.00"))
    assert fired_ids(book, "99.99") == []
    assert fired_ids(book, "100.00", T0 + 1) == [1]


def test_below_fires_exactly_at_the_threshold_and_not_a_tick_short():
    book = AlertBook(cooldown=60)
    book.add(alert(1, PRICE_BELOW, "100.00"))
    assert fired_ids(book, "100.01") == []
    assert fired_ids(book, "100.00", T0 + 1) == [1]


def test_only_the_crossed_thresholds_fire_and_other_symbols_are_untouched():
    book = AlertBook(cooldown=60)
    for pk, value in enumerate(["90", "95", "100", "105"], start=1):
        book.add(alert(pk, PRICE_ABOVE, value))
    book.add(alert(10, PRICE_ABOVE, "50", symbol="ETH-USDT"))
    assert fired_ids(book, "97") == [1, 2]
    assert 10 in book and 3 in book and 1 not in book


def test_once_fires_once_and_leaves_the_book():
    book = AlertBook(cooldown=0)
    book.add(alert(1, PRICE_ABOVE, "100", ONCE))
    assert fired_ids(book, "101") == [1]
    assert fired_ids(book, "102", T0 + 60) == []
    assert len(book) == 0


def test_every_time_waits_for_the_cooldown():
    book = AlertBook(cooldown=30)
    book.add(alert(1, PRICE_ABOVE, "100", EVERY_TIME))
    assert fired_ids(book, "101", T0) == [1]
    assert fired_ids(book, "101", T0 + 29.999) == []
    assert fired_ids(book, "101", T0 + 30) == [1]
    assert fired_ids(book, "99", T0 + 70) == []  # ready again, but the condition does not hold
    assert fired_ids(book, "100", T0 + 71) == [1]


def test_once_per_minute_fires_once_in_each_minute():
    book = AlertBook(cooldown=0)
    book.add(alert(1, PRICE_BELOW, "100", ONCE_PER_MINUTE))
    assert fired_ids(book, "99", T0 + 10) == [1]
    assert fired_ids(book, "98", T0 + 59.9) == []
    assert fired_ids(book, "98", T0 + 60) == [1]
    firings = book.tick("BTC-USDT", D("97"), T0 + 120.5)
    assert firings[0].key == f"price_alert:1:m{int((T0 + 120) // 60)}"


def test_a_repeating_alert_added_in_its_cooldown_waits():
    book = AlertBook(cooldown=60)
    book.add(alert(1, PRICE_ABOVE, "100", EVERY_TIME), ready_at=T0 + 10)
    assert fired_ids(book, "101", T0) == []
    assert fired_ids(book, "101", T0 + 10) == [1]


def test_removed_alerts_never_fire_even_while_cooling_down():
    book = AlertBook(cooldown=10)
    book.add(alert(1, PRICE_ABOVE, "100", EVERY_TIME))
    book.add(alert(2, PRICE_ABOVE, "100", ONCE))
    assert fired_ids(book, "101") == [1, 2]
    book.remove(1)
    book.remove(2)  # already gone: no error
    assert fired_ids(book, "101", T0 + 20) == []
    assert len(book) == 0


def test_change_pct_measures_the_move_from_the_window_start():
    book = AlertBook(cooldown=0)
    book.add(alert(1, CHANGE_PCT, "5", window="5m"))
    book.add(alert(2, CHANGE_PCT, "-5", window="5m"))
    book.add(alert(3, CHANGE_PCT, "5", window="1h"))
    assert fired_ids(book, "100", T0) == []  # no history before the window: no move yet
    assert fired_ids(book, "104.99", T0 + 300) == []  # +4.99% over 5 minutes
    firings = book.tick("BTC-USDT", D("105"), T0 + 300.5)  # the base is still the price at T0
    assert [f.alert.id for f in firings] == [1]
    assert firings[0].change == D("5")
    assert fired_ids(book, "95", T0 + 301) == [2]  # -5% exactly, down
    assert 3 in book  # the 1h window has no start price yet


def test_change_pct_base_moves_with_the_window():
    book = AlertBook(cooldown=0)
    book.add(alert(1, CHANGE_PCT, "10", window="5m"))
    book.tick("BTC-USDT", D("100"), T0)
    book.tick("BTC-USDT", D("105"), T0 + 200)
    # 400 s after T0 the window starts at T0 + 100, where the price was still 100
    assert fired_ids(book, "109", T0 + 400) == []
    # at T0 + 520 the window starts after the 105 print: +10% from 105 is 115.5
    assert fired_ids(book, "115.49", T0 + 520) == []
    assert fired_ids(book, "115.5", T0 + 521) == [1]


def test_dedupe_keys_differ_per_firing_and_repeat_for_the_same_tick():
    a = alert(1, PRICE_ABOVE, "100", EVERY_TIME)
    book = AlertBook(cooldown=1)
    book.add(a)
    first = book.tick("BTC-USDT", D("101"), T0)[0].key
    second = book.tick("BTC-USDT", D("101"), T0 + 2)[0].key
    assert first != second
    replay = AlertBook(cooldown=1)
    replay.add(a)
    assert replay.tick("BTC-USDT", D("101"), T0)[0].key == first


# --- the sorted book against the scan ----------------------------------------------------

prices = st.integers(min_value=90, max_value=110).map(lambda n: D(n))
alerts_st = st.lists(
    st.tuples(
        st.sampled_from([PRICE_ABOVE, PRICE_BELOW, CHANGE_PCT]),
        st.integers(min_value=90, max_value=110),
        st.sampled_from([ONCE, EVERY_TIME, ONCE_PER_MINUTE]),
        st.sampled_from(["BTC-USDT", "index:BTC"]),
        st.sampled_from(["5m", "1h"]),
        st.integers(min_value=1, max_value=10),
        st.booleans(),
    ),
    max_size=40,
)
ticks_st = st.lists(
    st.tuples(st.sampled_from(["BTC-USDT", "index:BTC"]), prices, st.floats(min_value=0, max_value=400)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(alerts=alerts_st, ticks=ticks_st, removals=st.lists(st.integers(min_value=1, max_value=40), max_size=10))
def test_sorted_book_fires_exactly_what_a_scan_fires(alerts, ticks, removals):
    sorted_book, scan = AlertBook(cooldown=45), ScanBook(cooldown=45)
    for pk, (condition, value, frequency, symbol, window, pct, down) in enumerate(alerts, start=1):
        if condition == CHANGE_PCT:
            a = alert(pk, condition, str(-pct if down else pct), frequency, symbol, window)
        else:
            a = alert(pk, condition, str(value), frequency, symbol)
        sorted_book.add(a)
        scan.add(a)
    at = T0
    for step, (symbol, price, gap) in enumerate(ticks):
        at += gap
        if step in removals:
            sorted_book.remove(step)
            scan.remove(step)
        got = {(f.alert.id, f.change, f.key) for f in sorted_book.tick(symbol, price, at)}
        want = {(f.alert.id, f.change, f.key) for f in scan.tick(symbol, price, at)}
        assert got == want
    assert set(sorted_book.alerts) == set(scan.alerts)
