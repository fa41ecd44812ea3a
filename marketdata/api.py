"""Market data API: instruments, ticker, order book, trades, candles, watchlist."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import validated
from trading.errors import ValidationFailed
from trading.money import parse_int
from trading.schema import SYMBOL_PATH, DecimalString, DecimalStringMethod, errors

from . import selectors, services
from .models import InstrumentKind


def _dec(value) -> str | None:
    return None if value is None else f"{value.normalize():f}"


class InstrumentSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    kind = serializers.ChoiceField(choices=InstrumentKind.choices)
    base = serializers.CharField()
    quote = serializers.CharField()
    tick_size = DecimalStringMethod()
    lot_size = DecimalStringMethod()
    min_notional = DecimalStringMethod()
    underlying = serializers.SerializerMethodField()
    expiry = serializers.DateTimeField(allow_null=True)
    strike = DecimalStringMethod(allow_null=True)
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

    @extend_schema_field(serializers.ChoiceField(choices=["call", "put"], allow_null=True))
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

    @extend_schema_serializer(component_name="Ticker")
    class OutputSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        last = DecimalString(allow_null=True, help_text="the last trade on our book, else the index")
        bid = DecimalString(allow_null=True)
        ask = DecimalString(allow_null=True)
        change_24h_percent = DecimalString(allow_null=True)
        high_24h = DecimalString(allow_null=True)
        low_24h = DecimalString(allow_null=True)
        volume_24h = DecimalString()
        index_price = DecimalString(allow_null=True, help_text="null while the index is stale")
        index_stale = serializers.BooleanField()
        time = serializers.DateTimeField()

    @extend_schema(tags=["market data"], parameters=[SYMBOL_PATH], responses={200: OutputSerializer})
    def get(self, request, symbol: str):
        return Response(selectors.ticker(instrument=selectors.instrument_get(symbol=symbol)))


def _levels(help_text: str):
    return serializers.ListField(
        child=serializers.ListField(child=DecimalString(), min_length=2, max_length=2), help_text=help_text
    )


class OrderBookApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="OrderBook")
    class OutputSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        bids = _levels("[price, quantity], highest price first")
        asks = _levels("[price, quantity], lowest price first")
        sequence = serializers.IntegerField(help_text="the engine's sequence this book follows; deltas on /ws/market/ go on from it")
        depth = serializers.IntegerField()

    @extend_schema(
        tags=["market data"],
        parameters=[SYMBOL_PATH, OpenApiParameter("depth", int, required=False, description="levels a side, 1 to 500 (default 20)")],
        responses={200: OutputSerializer},
    )
    def get(self, request, symbol: str):
        instrument = selectors.instrument_get(symbol=symbol)
        depth = _int_param(request, "depth", default=20, low=1, high=500)
        return Response(selectors.order_book(instrument=instrument, depth=depth))


class TradesApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="PublicTrade")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(help_text="the trade's sequence on the book")
        price = DecimalString()
        quantity = DecimalString()
        side = serializers.ChoiceField(choices=["buy", "sell"], help_text="the taker's side")
        time = serializers.DateTimeField()

    @extend_schema(
        tags=["market data"],
        parameters=[SYMBOL_PATH, OpenApiParameter("limit", int, required=False, description="1 to 500 (default 50)")],
        responses={200: OutputSerializer(many=True)},
        description="Recent public trades on our book, newest first.",
    )
    def get(self, request, symbol: str):
        instrument = selectors.instrument_get(symbol=symbol)
        return Response(selectors.recent_trades(instrument=instrument, limit=_int_param(request, "limit", default=50, low=1, high=500)))


class CandleSerializer(serializers.Serializer):
    time = serializers.DateTimeField(source="open_time")
    open = DecimalStringMethod()
    high = DecimalStringMethod()
    low = DecimalStringMethod()
    close = DecimalStringMethod()
    volume = DecimalStringMethod()

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
            SYMBOL_PATH,
            OpenApiParameter("interval", str, enum=["1m", "5m", "1h", "1d"], required=False),
            OpenApiParameter("start", str, required=False, description="ISO 8601"),
            OpenApiParameter("end", str, required=False, description="ISO 8601"),
            OpenApiParameter("limit", int, required=False, description="at most 1000 (default 500)"),
            OpenApiParameter("format", str, enum=["json", "csv"], required=False, description="csv: a CSV download"),
        ],
        responses={
            (200, "application/json"): CandleSerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
        },
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

    @extend_schema_serializer(component_name="WatchlistItem")
    class OutputSerializer(serializers.Serializer):
        symbol = serializers.CharField()

    @extend_schema(tags=["market data"], responses={200: {"type": "array", "items": {"type": "string"}}},
                   description="The symbols on your watchlist.")
    def get(self, request):
        return Response([item.symbol for item in selectors.watchlist_for(user=request.user)])

    @extend_schema(
        tags=["market data"],
        request=InputSerializer,
        responses={201: OutputSerializer, **errors({404: "unknown_symbol: no such market."})},
        examples=[OpenApiExample("BTC-USDT", request_only=True, value={"symbol": "BTC-USDT"})],
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        item = services.watchlist_add(user=request.user, symbol=data["symbol"])
        return Response(self.OutputSerializer(item).data, status=status.HTTP_201_CREATED)


class WatchlistItemApi(APIView):
    @extend_schema(tags=["market data"], parameters=[SYMBOL_PATH], request=None, responses={204: None})
    def delete(self, request, symbol: str):
        services.watchlist_remove(user=request.user, symbol=symbol)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _int_param(request, name: str, *, default: int, low: int, high: int) -> int:
    return parse_int(request.query_params.get(name), field=name, default=default, low=low, high=high)


def _time_param(request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None and raw.isascii() and raw.isdigit():
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


@extend_schema_serializer(component_name="OptionChainLeg")
class OptionChainLegSerializer(serializers.Serializer):
    series = serializers.CharField()
    mark_usdt = DecimalString()
    mark_underlying = DecimalString()
    bid_usdt = DecimalString()
    ask_usdt = DecimalString()
    iv = DecimalString()
    delta = DecimalString()
    gamma = DecimalString()
    vega = DecimalString(help_text="USDT per vol point")
    theta = DecimalString(help_text="USDT per day")


@extend_schema_serializer(component_name="OptionChainRow")
class OptionChainRowSerializer(serializers.Serializer):
    strike = DecimalString()
    call = OptionChainLegSerializer(required=False)
    put = OptionChainLegSerializer(required=False)


@extend_schema_serializer(component_name="OptionChainExpiry")
class OptionChainExpirySerializer(serializers.Serializer):
    expiry = serializers.DateTimeField()
    years = serializers.FloatField(help_text="time to expiry in years")
    atm_vol = DecimalString()
    rows = OptionChainRowSerializer(many=True)


class OptionChainApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="OptionChain")
    class OutputSerializer(serializers.Serializer):
        underlying = serializers.ChoiceField(choices=list(services.UNDERLYINGS))
        index_price = DecimalString()
        time = serializers.DateTimeField()
        expiries = OptionChainExpirySerializer(many=True)

    @extend_schema(
        tags=["market data"],
        parameters=[
            OpenApiParameter("underlying", str, enum=["BTC", "ETH"], required=True),
            OpenApiParameter("expiry", str, required=False, description="2026-12-25 (08:00 UTC) or ISO time; all live expiries if absent"),
        ],
        responses={
            200: OutputSerializer,
            **errors({404: "unknown_expiry: no live series expire then.", 503: "index_stale: no fresh index to price from."}),
        },
        description="Per strike: call and put mark in USDT and in the underlying, the counter's bid/ask in USDT, "
        "IV, delta, gamma, vega (USDT per vol point) and theta (USDT per day). 503 index_stale when the index is stale.",
    )
    def get(self, request):
        from .options import chain, parse_expiry

        return Response(
            chain(underlying=request.query_params.get("underlying", ""), expiry=parse_expiry(request.query_params.get("expiry")))
        )
