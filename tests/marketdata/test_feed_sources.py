"""Quotes, the Source protocol and collecting quotes; the package stays free of Django."""

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from marketdata.feed import Quote, Source, collect_quotes, to_price

NOW = 1_700_000_000.0


def test_a_quote_quantizes_price_half_even_bid_down_and_ask_up():
    quote = Quote("x", "BTC", "65000.125", "64999.999", "65000.001", NOW)
    assert quote.price == Decimal("65000.12")
    assert quote.bid == Decimal("64999.99")
    assert quote.ask == Decimal("65000.01")
    assert quote.ts == NOW and quote.age(NOW + 3) == 3
    assert Quote("x", "BTC", 3400, None, None, 1).price == Decimal("3400.00")


@pytest.mark.parametrize("price", [0, -1, "0.004", "NaN", "Infinity", "abc", 65000.0, True, None])
def test_a_quote_refuses_what_is_not_a_price(price):
    with pytest.raises((TypeError, ValueError)):
        Quote("x", "BTC", price, None, None, NOW)


def test_a_quote_needs_its_source_and_underlying():
    with pytest.raises(ValueError):
        Quote("", "BTC", Decimal("1"), None, None, NOW)
    with pytest.raises(ValueError):
        Quote("x", "", Decimal("1"), None, None, NOW)


def test_to_price_takes_floats_only_through_str():
    with pytest.raises(TypeError):
        to_price(0.1)
    assert to_price(str(0.1 + 0.2)) == Decimal("0.30")


class Fixed:
    def __init__(self, name, price=None, *, underlying=None, source=None, boom=False):
        self.name, self.price, self.underlying, self.source, self.boom = name, price, underlying, source, boom

    def fetch(self, underlying, now):
        if self.boom:
            raise RuntimeError("adapter bug")
        if self.price is None:
            return None
        return Quote(self.source or self.name, self.underlying or underlying, Decimal(self.price), None, None, now)


def test_collect_quotes_keys_by_source_and_treats_failures_as_missing():
    sources = [
        Fixed("a", "100"),
        Fixed("b"),
        Fixed("c", boom=True),
        Fixed("d", "100", underlying="ETH"),
        Fixed("e", "100", source="someone-else"),
    ]
    assert all(isinstance(s, Source) for s in sources)
    quotes = collect_quotes(sources, "BTC", NOW)
    assert list(quotes) == ["a", "b", "c", "d", "e"]
    assert quotes["a"].price == Decimal("100.00")
    assert quotes["b"] is quotes["c"] is quotes["d"] is quotes["e"] is None


def test_collect_quotes_refuses_two_sources_with_one_name():
    with pytest.raises(ValueError):
        collect_quotes([Fixed("a", "1"), Fixed("a", "2")], "BTC", NOW)


def test_the_feed_package_imports_neither_django_nor_ccxt():
    root = Path(__file__).resolve().parents[2]
    code = "import sys, marketdata.feed; print('django' in sys.modules, 'ccxt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
