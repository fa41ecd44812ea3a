"""Reads for routing: every source's book (ours and the outside venues'), the aggregated book
built from them, and RFQ quotes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from marketdata.selectors import spot_market
from trading.errors import NotFound
from trading.formatting import decimal_string
from venues.base import Venue, VenueError
from venues.config import routing_venue_names, venue_get

from .models import RfqQuote

logger = logging.getLogger(__name__)

OUR_BOOK = "book"


@dataclass
class Source:
    """One place liquidity sits: ``bids``/``asks`` are ``[(price, quantity)]`` best first;
    ``fee`` is its taker rate; ``venue`` is None for our own book."""

    name: str
    fee: Decimal
    bids: list
    asks: list
    venue: Venue | None = None


def route_sources(*, symbol: str, depth: int) -> tuple[list[Source], list[str]]:
    """Our book (as its engine last published it) and each venue's, in a fixed order (ours
    first, then venues by name); venues that cannot answer are left out and named."""
    market = spot_market(symbol)
    sources = [
        Source(
            OUR_BOOK,
            Decimal(settings.SPOT_TAKER_FEE),
            bids=[(Decimal(p), Decimal(q)) for p, q in market["bids"][:depth]],
            asks=[(Decimal(p), Decimal(q)) for p, q in market["asks"][:depth]],
        )
    ]
    unavailable = []
    for name in routing_venue_names():
        try:
            venue = venue_get(name)
            book = venue.order_book(symbol, depth)
        except VenueError as exc:
            logger.warning("venue %s has no book for %s: %s", name, symbol, exc)
            unavailable.append(name)
            continue
        sources.append(Source(name, venue.taker_fee, bids=list(book.bids), asks=list(book.asks), venue=venue))
    return sources, unavailable


def aggregated_book(*, symbol: str, depth: int) -> dict:
    """Every source's levels merged by price: ``[price, total_qty, {source: qty}]`` per side,
    best first (highest bid, lowest ask), ``depth`` levels a side."""
    sources, unavailable = route_sources(symbol=symbol, depth=depth)
    sides = {}
    for side, best_first_descending in (("bids", True), ("asks", False)):
        merged: dict[Decimal, dict[str, Decimal]] = {}
        for source in sources:
            for price, quantity in getattr(source, side):
                if quantity > 0:
                    by_source = merged.setdefault(price, {})
                    by_source[source.name] = by_source.get(source.name, Decimal(0)) + quantity
        prices = sorted(merged, reverse=best_first_descending)[:depth]
        sides[side] = [
            [
                decimal_string(price),
                decimal_string(sum(merged[price].values())),
                {name: decimal_string(q) for name, q in merged[price].items()},
            ]
            for price in prices
        ]
    return {
        "symbol": symbol,
        "depth": depth,
        "bids": sides["bids"],
        "asks": sides["asks"],
        "sources": [{"name": s.name, "taker_fee": decimal_string(s.fee)} for s in sources],
        "unavailable": unavailable,
    }


def rfq_quote_get(*, user, quote_id) -> RfqQuote:
    """The trader's own quote; another's (or a malformed id) is not found."""
    quote = RfqQuote.objects.filter(pk=quote_id, user=user).first() if _is_uuid(quote_id) else None
    if quote is None:
        raise NotFound("No such quote.")
    return quote


def _is_uuid(value) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
