"""The analytics dashboard's figures (admin → Operations → Analytics, and the staff JSON at
GET /api/v1/ops/analytics that the page polls): orders and trades per minute, volume over
24 hours, the index's realized volatility, settlement lag and open alerts. Each figure is one
aggregate query on an indexed range; the counter's exposure comes from its own endpoint
(GET /api/v1/ops/risk/exposure), which the page polls beside this one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min, Q, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from marketdata.models import Candle, CandleSource
from marketdata.services import SPOT_MARKETS
from orders.models import SpotOrder, SpotTrade
from settlement.models import ACTIVE_STATES, Settlement, State
from trading import staff_queues

from .models import Incident
from .volatility import realized_volatility

MINUTES = 60
# realized volatility windows: (name, candle interval, its length in seconds, how far back)
VOL_WINDOWS = (("1h", "1m", 60, timedelta(hours=1)), ("24h", "5m", 300, timedelta(hours=24)))


@dataclass
class Analytics:
    now: datetime
    per_minute: list[dict]
    volume_24h: list[dict]
    volatility: list[dict]
    settlement: dict
    alerts: dict


def _minute_rows(now: datetime) -> list[dict]:
    """The last ``MINUTES`` whole minutes and the current one, oldest first: orders entered,
    trades and their USDT volume (zeros where nothing happened)."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=MINUTES)
    window = {"created_at__gte": start, "created_at__lte": now}
    orders = dict(
        SpotOrder.objects.filter(**window, parent__isnull=True)
        .annotate(minute=TruncMinute("created_at"))
        .values_list("minute")
        .annotate(n=Count("id"))
        .order_by()
    )
    trades = {
        row["minute"]: row
        for row in SpotTrade.objects.filter(**window)
        .annotate(minute=TruncMinute("created_at"))
        .values("minute")
        .annotate(trades=Count("id"), volume_quote=Sum("quote_amount"))
        .order_by()
    }
    rows = []
    for i in range(MINUTES + 1):
        minute = start + timedelta(minutes=i)
        traded = trades.get(minute, {})
        rows.append(
            {
                "minute": minute,
                "orders": orders.get(minute, 0),
                "trades": traded.get("trades", 0),
                "volume_quote": traded.get("volume_quote") or Decimal(0),
            }
        )
    return rows


def _volume_24h(now: datetime) -> list[dict]:
    found = {
        row["symbol"]: row
        for row in SpotTrade.objects.filter(created_at__gte=now - timedelta(hours=24), created_at__lte=now)
        .values("symbol")
        .annotate(trades=Count("id"), volume_base=Sum("quantity"), volume_quote=Sum("quote_amount"))
        .order_by()
    }
    symbols = sorted(set(SPOT_MARKETS) | set(found))
    zero = {"trades": 0, "volume_base": Decimal(0), "volume_quote": Decimal(0)}
    return [{**zero, **found.get(symbol, {}), "symbol": symbol} for symbol in symbols]


def _volatility(now: datetime) -> list[dict]:
    """From the index candles the feed writes for the spot symbols: one query for every
    symbol and window; the closes (at most 288 per window) go to the pure core."""
    window = Q()
    for _name, interval, _seconds, back in VOL_WINDOWS:
        window |= Q(interval=interval, open_time__gte=now - back, open_time__lte=now)
    closes: dict[tuple[str, str], list[Decimal]] = {}
    for symbol, interval, close in (
        Candle.objects.filter(window, symbol__in=list(SPOT_MARKETS), source=CandleSource.INDEX)
        .order_by("symbol", "interval", "open_time")
        .values_list("symbol", "interval", "close")
    ):
        closes.setdefault((symbol, interval), []).append(close)
    rows = []
    for symbol, (underlying, *_rest) in sorted(SPOT_MARKETS.items()):
        row = {"underlying": underlying, "symbol": symbol}
        for name, interval, seconds, _back in VOL_WINDOWS:
            series = closes.get((symbol, interval), [])
            vol = realized_volatility(series, period_seconds=seconds)
            row[f"vol_{name}"] = None if vol is None else Decimal(str(round(vol * 100, 2)))
            row[f"samples_{name}"] = len(series)
        rows.append(row)
    return rows


def _settlement(now: datetime) -> dict:
    """Settlements waiting (and the oldest one's age), in manual review, and how long the
    last hour's settled ones took from the order's transaction to the last step."""
    since = now - timedelta(hours=1)
    settled = Q(state=State.SETTLED, settled_at__gte=since)
    lag = ExpressionWrapper(F("settled_at") - F("event_created_at"), output_field=DurationField())
    figures = Settlement.objects.filter(
        # updated_at >= settled_at always: the bound lets the (state, updated_at) index find them
        Q(state__in=[*ACTIVE_STATES, State.MANUAL_REVIEW]) | (settled & Q(updated_at__gte=since))
    ).aggregate(
        waiting=Count("id", filter=Q(state__in=ACTIVE_STATES)),
        oldest_waiting=Min("event_created_at", filter=Q(state__in=ACTIVE_STATES)),
        manual_review=Count("id", filter=Q(state=State.MANUAL_REVIEW)),
        settled_1h=Count("id", filter=settled),
        lag_sum=Sum(lag, filter=settled),
        lag_max=Max(lag, filter=settled),
    )
    oldest = figures["oldest_waiting"]
    count = figures["settled_1h"]
    return {
        "waiting": figures["waiting"],
        "oldest_waiting_seconds": None if oldest is None else _seconds(now - oldest),
        "manual_review": figures["manual_review"],
        "settled_1h": count,
        "lag_avg_seconds": _seconds(figures["lag_sum"] / count) if count else None,
        "lag_max_seconds": _seconds(figures["lag_max"]) if count else None,
    }


def _seconds(delta: timedelta | None) -> Decimal | None:
    return None if delta is None else Decimal(str(round(delta.total_seconds(), 3)))


def _alerts() -> dict:
    incidents = Incident.objects.filter(resolved_at__isnull=True).count()
    # compliance shares ops' floor: its open cases come through the staff queues' registry
    cases = staff_queues.count_of("aml_cases") or 0
    return {"incidents_open": incidents, "aml_cases_open": cases, "total": incidents + cases}


def analytics_dashboard(*, now: datetime | None = None) -> Analytics:
    now = now or timezone.now()
    return Analytics(
        now=now,
        per_minute=_minute_rows(now),
        volume_24h=_volume_24h(now),
        volatility=_volatility(now),
        settlement=_settlement(now),
        alerts=_alerts(),
    )
