"""Browser pages: the markets overview and one market with its live chart."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import render

from trading.errors import NotFound

from . import selectors
from .models import InstrumentKind


def markets(request):
    watched = set()
    if request.user.is_authenticated:
        watched = {item.symbol for item in selectors.watchlist_for(user=request.user)}
    rows = [
        {"instrument": instrument, "ticker": selectors.ticker(instrument=instrument), "watched": instrument.symbol in watched}
        for instrument in selectors.instruments_active(kind=InstrumentKind.SPOT)
    ]
    watchlist = sorted(watched)
    return render(request, "marketdata/markets.html", {"rows": rows, "watchlist": watchlist})


def market(request, symbol: str):
    try:
        instrument = selectors.instrument_get(symbol=symbol)
    except NotFound:
        raise Http404 from None
    if instrument.kind != InstrumentKind.SPOT:
        raise Http404
    return render(request, "marketdata/market.html", {"instrument": instrument, "ticker": selectors.ticker(instrument=instrument)})


def options(request):
    """The chain for everyone; for a signed-in trader also the USDT-mode ticket, positions and
    order history (templates/orders/, driven by frontend/options.js through the options API)."""
    context = {"quote_ttl": settings.OPTION_QUOTE_TTL_SECONDS}
    if request.user.is_authenticated:
        from accounts.selectors import kyc_tier

        context["can_buy"] = kyc_tier(user=request.user) >= 1 or not settings.OPTION_KYC_REQUIRED
    return render(request, "marketdata/options.html", context)
