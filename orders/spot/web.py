"""The spot market page: chart, live book and trades for everyone, the trading desk for a
signed-in trader."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render

from marketdata import selectors
from marketdata.models import InstrumentKind
from trading.errors import NotFound
from trading.formatting import decimal_string


def trade(request):
    """The "Trade" link and where a trader lands after signing in: the first spot market's
    page (BTC-USDT), or the markets list while none is listed."""
    symbols = selectors.spot_symbols()
    if not symbols:
        return redirect("web:markets")
    return redirect("web:market", "BTC-USDT" if "BTC-USDT" in symbols else sorted(symbols)[0])


def market(request, symbol: str):
    """The market (chart, live book, recent trades) for everyone; for a signed-in trader also
    the order ticket, open orders, history, fills and balances (templates/orders/spot/trading.html,
    driven by frontend/trade.js through the orders API and the user stream)."""
    try:
        instrument = selectors.instrument_get(symbol=symbol)
    except NotFound:
        raise Http404 from None
    if instrument.kind != InstrumentKind.SPOT:
        raise Http404
    config = {
        "symbol": instrument.symbol,
        "base": instrument.base,
        "quote": instrument.quote,
        "tick_size": decimal_string(instrument.tick_size),
        "lot_size": decimal_string(instrument.lot_size),
        "min_notional": decimal_string(instrument.min_notional),
        "signed_in": request.user.is_authenticated,
    }
    balances = []
    if request.user.is_authenticated:
        from ledger.selectors import balances_for
        from trading.money import fmt

        # First paint only; the page keeps them live from /ws/user/ (or the balances API).
        balances = [
            {
                "asset": b.asset,
                "available": fmt(b.asset, b.available),
                "held": fmt(b.asset, b.held),
                "total": fmt(b.asset, b.total),
            }
            for b in balances_for(user=request.user)
        ]
        config.update(
            balances=balances,
            maker_fee=settings.SPOT_MAKER_FEE,
            taker_fee=settings.SPOT_TAKER_FEE,
            market_band=settings.SPOT_MARKET_BAND,
        )
    ticker = selectors.ticker(instrument=instrument)
    config["last"] = ticker["last"]  # the book's middle row shows it until the first trade
    return render(
        request,
        "orders/spot/market.html",
        {
            "instrument": instrument,
            "ticker": ticker,
            "trade_config": config,
            "balances": [b for b in balances if b["asset"] in (instrument.base, instrument.quote)],
        },
    )
