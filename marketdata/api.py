"""Market data API: instruments, ticker, order book, trades, candles, watchlist."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import validated
from trading.errors import ValidationFailed

from . import selectors, services
from .models import InstrumentKind


def _dec(value) -> str | None:
    return None if value is None else f"{value.normalize():f}"


class InstrumentSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    kind = serializers.CharField()
    base = serializers.CharField()
    quote = serializers.CharField()
    tick_size = serializers.SerializerMethodField()
    lot_size = serializers.SerializerMethodField()
    min_notional = serializers.SerializerMethodField()
    underlying = serializers.SerializerMethodField()
    expiry = serializers.DateTimeField(allow_null=True)
    strike = serializers.SerializerMethodField()
    option_type = serializers.SerializerMethodField()

    def get_tick_size(self, obj) -> str:
        return _dec(obj.tick_size)

    def get_lot_size(self, obj) -> str:
        return _dec(obj.lot_size)

    def get_min_notional(self, obj) -> str:
        return _dec(obj.min_notional)

    def get_underlying(self, obj) -> str | None:
        return obj.base if obj.kind == InstrumentKind.OPTION else None

    def get_strike(self, obj) -> str | None:
        return _dec(obj.strike)

    def get_option_type(self, obj) -> str | None:
        return {"C": "call", "P": "put"}.get(obj.option_type)


class InstrumentsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=["spot", "option"], required=False),
            OpenApiParameter("underlying", str, enum=["BTC", "ETH"], required=False),
        ],
        responses={200: InstrumentSerializer(many=True)},
        tags=["market data"],
    )
    def get(self, request):
        kind = request.query_params.get("kind") or None
        if kind and kind not in InstrumentKind.values:
            raise ValidationFailed("Unknown kind.", fields={"kind": ["spot or option"]})
        underlying = request.query_params.get("underlying") or None
        if underlying and underlying.upper() not in services.UNDERLYINGS:
            raise ValidationFailed("Unknown underlying.", fields={"underlying": ["BTC or ETH"]})
        instruments = selectors.instruments_active(kind=kind, underlying=underlying)
        return Response(InstrumentSerializer(instruments, many=True).data)


class TickerApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["market data"], responses={200: dict})
    def get(self, request, symbol: str):
        return Response(selectors.ticker(instrument=selectors.instrument_get(symbol=symbol)))


class OrderBookApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["market data"], parameters=[OpenApiParameter("depth", int, required=False)], responses={200: dict})
    def get(self, request, symbol: str):
        instrument = selectors.instrument_get(symbol=symbol)
        depth = _int_param(request, "depth", default=20, low=1, high=500)
        return Response(selectors.order_book(instrument=instrument, depth=depth))


class TradesApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["market data"], responses={200: dict})
    def get(self, request, symbol: str):
        instrument = selectors.instrument_get(symbol=symbol)
        return Response(selectors.recent_trades(instrument=instrument, limit=_int_param(request, "limit", default=50, low=1, high=500)))


class CandleSerializer(serializers.Serializer):
    time = serializers.DateTimeField(source="open_time")
    open = serializers.SerializerMethodField()
    high = serializers.SerializerMethodField()
    low = serializers.SerializerMethodField()
    close = serializers.SerializerMethodField()
    volume = serializers.SerializerMethodField()

    def get_open(self, obj) -> str:
        return _dec(obj.open)

    def get_high(self, obj) -> str:
        return _dec(obj.high)

    def get_low(self, obj) -> str:
        return _dec(obj.low)

    def get_close(self, obj) -> str:
        return _dec(obj.close)

    def get_volume(self, obj) -> str:
        return _dec(obj.volume)


class CandleCsvRenderer(BaseRenderer):
    """``?format=csv``: the same candles as a CSV file, for back-testing."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict):  # an error body
            return json.dumps(data)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["time", "open", "high", "low", "close", "volume"])
        for row in data:
            writer.writerow([row["time"], row["open"], row["high"], row["low"], row["close"], row["volume"]])
        return out.getvalue()


class CandlesApi(APIView):
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer, CandleCsvRenderer]

    @extend_schema(
        tags=["market data"],
        parameters=[
            OpenApiParameter("interval", str, enum=["1m", "5m", "1h", "1d"], required=False),
            OpenApiParameter("start", str, required=False, description="ISO 8601"),
            OpenApiParameter("end", str, required=False, description="ISO 8601"),
            OpenApiParameter("limit", int, required=False, description="at most 1000 (default 500)"),
            OpenApiParameter("format", str, enum=["json", "csv"], required=False, description="csv: a CSV download"),
        ],
        responses={200: CandleSerializer(many=True)},
    )
    def get(self, request, symbol: str):
        instrument = selectors.instrument_get(symbol=symbol)
        candles = selectors.candles_for(
            symbol=instrument.symbol,
            interval=request.query_params.get("interval", "1m"),
            start=_time_param(request, "start"),
            end=_time_param(request, "end"),
            limit=_int_param(request, "limit", default=500, low=1, high=selectors.MAX_CANDLES),
        )
        response = Response(CandleSerializer(candles, many=True).data)
        if request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="{instrument.symbol}-{request.query_params.get("interval", "1m")}.csv"'
        return response


class WatchlistApi(APIView):
    @extend_schema_serializer(component_name="WatchlistInput")
    class InputSerializer(serializers.Serializer):
        symbol = serializers.CharField(max_length=40)

    @extend_schema(tags=["market data"], responses={200: dict})
    def get(self, request):
        return Response([item.symbol for item in selectors.watchlist_for(user=request.user)])

    @extend_schema(tags=["market data"], request=InputSerializer, responses={201: dict})
    def post(self, request):
        data = validated(self.InputSerializer, request)
        item = services.watchlist_add(user=request.user, symbol=data["symbol"])
        return Response({"symbol": item.symbol}, status=status.HTTP_201_CREATED)


class WatchlistItemApi(APIView):
    @extend_schema(tags=["market data"], responses={204: None})
    def delete(self, request, symbol: str):
        services.watchlist_remove(user=request.user, symbol=symbol)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _int_param(request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be an integer.", fields={name: ["Not an integer."]}) from None
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low} and {high}.", fields={name: [f"Between {low} and {high}."]})
    return value


def _time_param(request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None and raw.isdigit():
        from datetime import timezone

        try:
            value = datetime.fromtimestamp(int(raw), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):  # beyond the years datetime can hold
            value = None
    if value is None:
        raise ValidationFailed(f"{name} is not an ISO 8601 time.", fields={name: ["Use ISO 8601, e.g. 2026-11-21T08:00:00Z."]})
    if value.tzinfo is None:
        from datetime import timezone

        value = value.replace(tzinfo=timezone.utc)
    return value


class OptionChainApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["market data"],
        parameters=[
            OpenApiParameter("underlying", str, enum=["BTC", "ETH"], required=True),
            OpenApiParameter("expiry", str, required=False, description="2026-12-25 (08:00 UTC) or ISO time; all live expiries if absent"),
        ],
        responses={200: dict},
        description="Per strike: call and put mark in USDT and in the underlying, the counter's bid/ask in USDT, "
        "IV, delta, gamma, vega (USDT per vol point) and theta (USDT per day). 503 index_stale when the index is stale.",
    )
    def get(self, request):
        from .options import chain, parse_expiry

        return Response(
            chain(underlying=request.query_params.get("underlying", ""), expiry=parse_expiry(request.query_params.get("expiry")))
        )
