"""The index rule: median of fresh sources, outliers clipped, stale when too few agree."""

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.feed import (
    INSUFFICIENT,
    MISSING,
    OUTLIER,
    STALE,
    IndexStaleError,
    Quote,
    compute_index,
)
from marketdata.feed.index import median

NOW = 1_700_000_000.0
CLIP = Decimal("0.02")


def q(source, price, *, age=0.0, underlying="BTC"):
    return Quote(source, underlying, Decimal(price), None, None, NOW - age)


def test_median_of_an_odd_count():
    result = compute_index({"a": q("a", "100.00"), "b": q("b", "101.00"), "c": q("c", "100.50")}, NOW)
    assert result.price == Decimal("100.50")
    assert not result.stale
    assert result.used == ["a", "b", "c"]
    assert result.excluded == {}
    assert result.underlying == "BTC"
    assert result.ts == NOW


def test_median_of_an_even_count_is_the_mean_of_the_middle_two_rounded_half_even():
    result = compute_index([q("a", "100.00"), q("b", "100.01"), q("c", "100.03"), q("d", "100.05")], NOW)
    assert result.price == Decimal("100.02")  # (100.01 + 100.03) / 2
    result = compute_index([q("a", "100.00"), q("b", "100.01")], NOW)
    assert result.price == Decimal("100.00")  # 100.005 rounds half-even


def test_an_outlier_is_clipped_and_the_median_recomputed():
    quotes = {"a": q("a", "65000"), "b": q("b", "65010"), "c": q("c", "65020"), "d": q("d", "70000")}
    result = compute_index(quotes, NOW)
    assert result.excluded == {"d": OUTLIER}
    assert result.used == ["a", "b", "c"]
    assert result.price == Decimal("65010.00")


def test_a_quote_exactly_at_the_band_is_kept():
    # m0 = 100; 102 is exactly 2% away
    result = compute_index([q("a", "98"), q("b", "100"), q("c", "102")], NOW)
    assert result.used == ["a", "b", "c"]
    result = compute_index([q("a", "97.99"), q("b", "100"), q("c", "102.01")], NOW)
    assert result.stale  # one survivor is fewer than min_sources
    assert result.excluded == {"a": OUTLIER, "b": INSUFFICIENT, "c": OUTLIER}


def test_missing_and_stale_sources_are_flagged_and_excluded():
    quotes = {
        "a": q("a", "100"),
        "b": q("b", "101", age=3),
        "c": q("c", "150", age=10.5),  # too old: its wild price must not matter
        "d": None,
        "e": q("e", "100", age=-30),  # from the future: a broken clock
    }
    result = compute_index(quotes, NOW, max_age_s=10)
    assert result.excluded == {"c": STALE, "d": MISSING, "e": STALE}
    assert result.used == ["a", "b"]
    assert result.price == Decimal("100.50")


def test_a_quote_exactly_max_age_old_is_fresh():
    result = compute_index([q("a", "100", age=10), q("b", "100", age=10)], NOW, max_age_s=10)
    assert not result.stale


def test_all_stale_marks_the_index_stale_and_trading_refuses():
    result = compute_index({"a": q("a", "100", age=60), "b": None}, NOW)
    assert result.stale and result.price is None
    assert result.used == []
    assert result.excluded == {"a": STALE, "b": MISSING}
    with pytest.raises(IndexStaleError, match=r"BTC index price is stale.*a: stale, b: missing") as caught:
        result.require_price()
    assert caught.value.underlying == "BTC"
    assert caught.value.excluded == {"a": STALE, "b": MISSING}


def test_fewer_fresh_sources_than_min_sources_is_stale():
    result = compute_index({"a": q("a", "100"), "b": q("b", "100", age=99)}, NOW, min_sources=2)
    assert result.stale
    assert result.excluded == {"a": INSUFFICIENT, "b": STALE}
    result = compute_index({"a": q("a", "100"), "b": q("b", "100", age=99)}, NOW, min_sources=1)
    assert result.price == Decimal("100.00")
    assert result.require_price() == Decimal("100.00")


def test_two_sources_that_disagree_beyond_the_band_make_it_stale():
    result = compute_index([q("a", "100"), q("b", "105")], NOW)
    assert result.stale
    assert result.excluded == {"a": OUTLIER, "b": OUTLIER}


def test_no_quotes_at_all_is_stale():
    result = compute_index({}, NOW, underlying="ETH")
    assert result.stale and result.underlying == "ETH"
    with pytest.raises(IndexStaleError, match="no sources"):
        result.require_price()


def test_a_sequence_reports_a_missing_source_by_position():
    result = compute_index([q("a", "100"), None, q("c", "100")], NOW)
    assert result.excluded == {"#1": MISSING}


def test_mixed_underlyings_and_mislabelled_quotes_are_errors():
    with pytest.raises(ValueError):
        compute_index([q("a", "100"), q("b", "100", underlying="ETH")], NOW)
    with pytest.raises(ValueError):
        compute_index([q("a", "100")], NOW, underlying="ETH")
    with pytest.raises(ValueError):
        compute_index({"b": q("a", "100")}, NOW)
    with pytest.raises(ValueError):
        compute_index([q("a", "100"), q("a", "101")], NOW)


# --- properties ----------------------------------------------------------------------------

cents = st.integers(min_value=100, max_value=20_000_000).map(lambda c: Decimal(c) / 100)


@st.composite
def quote_sets(draw):
    prices = draw(st.lists(cents, min_size=0, max_size=9))
    ages = draw(st.lists(st.floats(min_value=0, max_value=30), min_size=len(prices), max_size=len(prices)))
    quotes = {f"s{i}": q(f"s{i}", p, age=a) for i, (p, a) in enumerate(zip(prices, ages, strict=True))}
    for i in range(draw(st.integers(0, 2))):
        quotes[f"none{i}"] = None
    return quotes


@settings(max_examples=300, deadline=None)
@given(quote_sets())
def test_the_index_lies_within_its_kept_quotes(quotes):
    result = compute_index(quotes, NOW)
    assert set(result.used) | set(result.excluded) == set(quotes)
    assert not set(result.used) & set(result.excluded)
    if result.stale:
        assert result.price is None and result.used == []
        return
    kept = [quotes[name].price for name in result.used]
    assert len(kept) >= 2
    assert min(kept) <= result.price <= max(kept)
    assert all(quotes[name].age(NOW) <= 10 for name in result.used)
    fresh = [quotes[name].price for name in quotes if name in result.used or result.excluded.get(name) == OUTLIER]
    m0 = median(fresh)
    assert all(abs(p - m0) <= CLIP * m0 for p in kept)
    assert all(abs(quotes[name].price - m0) > CLIP * m0 for name, why in result.excluded.items() if why == OUTLIER)


@settings(max_examples=300, deadline=None)
@given(quote_sets(), st.randoms(use_true_random=False))
def test_the_index_does_not_depend_on_the_order_of_the_quotes(quotes, rnd):
    items = list(quotes.items())
    rnd.shuffle(items)
    assert compute_index(dict(items), NOW) == compute_index(quotes, NOW)
    as_list = [quote for _, quote in items if quote is not None]
    rnd.shuffle(as_list)
    from_list = compute_index(as_list, NOW)
    from_map = compute_index({k: v for k, v in quotes.items() if v is not None}, NOW)
    assert (from_list.price, from_list.stale, from_list.used, from_list.excluded) == (
        from_map.price,
        from_map.stale,
        from_map.used,
        from_map.excluded,
    )


@settings(max_examples=500, deadline=None)
@given(
    center=st.integers(min_value=10_000, max_value=10_000_000),
    offsets=st.lists(st.integers(min_value=-50, max_value=50), min_size=3, max_size=8),
    wild_factor=st.one_of(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=4),
        st.sampled_from([Decimal("0.98"), Decimal("1.02"), Decimal("0.97"), Decimal("1.03")]),
    ),
    position=st.integers(min_value=0, max_value=8),
)
def test_one_wild_print_among_three_sane_sources_moves_the_index_by_at_most_clip_pct(
    center, offsets, wild_factor, position
):
    # sane sources agree within ±0.5% (a quarter of the 2% band) of a common centre
    centre = Decimal(center) / 100
    sane = [(centre * (1 + Decimal(o) / 10_000)).quantize(Decimal("0.01")) for o in offsets]
    sane_quotes = [q(f"sane{i}", p) for i, p in enumerate(sane)]
    wild = q(
        "wild",
        (centre * wild_factor).quantize(Decimal("0.01"))
        if centre * wild_factor >= Decimal("0.01")
        else Decimal("0.01"),
    )
    with_wild = list(sane_quotes)
    with_wild.insert(position % (len(with_wild) + 1), wild)

    before = compute_index(sane_quotes, NOW, clip_pct=CLIP)
    after = compute_index(with_wild, NOW, clip_pct=CLIP)
    assert not before.stale and not after.stale
    assert abs(after.price - before.price) <= CLIP * before.price
    assert min(sane) <= after.price <= max(sane)


def test_a_random_market_with_bad_prints_keeps_the_index_near_the_truth():
    rnd = random.Random(7)
    for _ in range(200):
        truth = Decimal(rnd.randint(1_000_000, 10_000_000)) / 100
        bad = set(rnd.sample(range(5), rnd.randint(0, 2)))  # a minority of bad prints
        quotes = {}
        for i in range(5):
            price = truth * (1 + Decimal(rnd.randint(-5, 5)) / 10_000)
            if i in bad:
                price *= Decimal(rnd.choice(["0.5", "0.9", "1.1", "3"]))
            quotes[f"x{i}"] = q(f"x{i}", price.quantize(Decimal("0.01")))
        result = compute_index(quotes, NOW)
        assert not result.stale
        assert abs(result.price - truth) <= truth * Decimal("0.0006")
        assert {name for name, why in result.excluded.items() if why == OUTLIER} == {f"x{i}" for i in bad}
