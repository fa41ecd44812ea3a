"""URL path converters, registered on import: every urls module that uses ``<symbol:...>``
imports this one first."""

from django.urls import register_converter


class SymbolConverter:
    """A market symbol or option series (``BTC-USDT``, ``BTC-20261225-100000-C``): anything
    else in that place of a URL is a 404 before any view or query runs."""

    regex = r"[A-Za-z0-9][A-Za-z0-9.\-]{0,39}"

    def to_python(self, value: str) -> str:
        return value.upper()

    def to_url(self, value: str) -> str:
        return value


register_converter(SymbolConverter, "symbol")
