"""The Portfolio page (/portfolio/): the trader's value, PnL, allocation, equity curve, lots,
option positions, downloads and rebalancing. The page paints itself from the portfolio API
(frontend/portfolio.js) and keeps its values moving with the ticker on /ws/market/."""

from __future__ import annotations

from datetime import UTC

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from marketdata.models import Instrument, InstrumentKind
from trading.money import ASSETS

from . import core, snapshots


@login_required
def portfolio(request):
    today = timezone.now().astimezone(UTC).date()
    config = {
        "assets": list(ASSETS),
        "symbols": list(
            Instrument.objects.filter(kind=InstrumentKind.SPOT, active=True, quote="USDT")
            .order_by("symbol")
            .values_list("symbol", flat=True)
        ),
        "methods": list(core.METHODS),
        "method": core.FIFO,
        "periods": list(snapshots.PERIODS),
        "period": "30d",
        "tolerance": settings.PORTFOLIO_REBALANCE_TOLERANCE,
        "concentration": settings.PORTFOLIO_CONCENTRATION_THRESHOLD,
        # the statement's default period: this month so far
        "statement_start": today.replace(day=1).isoformat(),
        "today": today.isoformat(),
    }
    return render(request, "portfolio/portfolio.html", {"portfolio_config": config})


urlpatterns = [path("portfolio/", portfolio, name="portfolio")]
