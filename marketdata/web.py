"""Browser pages: the markets overview and one market with its live chart."""

from django.shortcuts import render

from . import selectors
from .models import InstrumentKind


def markets(request):
    watched = set()
    if request.user.is_authenticated:
        watched = {item.symbol for item in selectors.watchlist_for(user=request.user)}
    rows = [
        {
            "instrument": instrument,
            "ticker": selectors.ticker(instrument=instrument),
            "watched": instrument.symbol in watched,
        }
        for instrument in selectors.instruments_active(kind=InstrumentKind.SPOT)
    ]
    watchlist = sorted(watched)
    return render(request, "marketdata/markets.html", {"rows": rows, "watchlist": watchlist})
