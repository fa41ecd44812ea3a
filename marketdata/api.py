"""Market data API: instruments, ticker, order book, trades, candles, watchlist."""

from __future__ import annotations

import csv
import io
import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import ChoiceParam, IntParam, TextParam, TimeParam, validated, validated_query
from trading.schema import SYMBOL_PATH, DecimalString, UtcDateTime, errors

from . import selectors, services
from .models import Candle, InstrumentKind


class InstrumentSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    kind = serializers.ChoiceField(choices=InstrumentKind.choices)
    base = serializers.CharField()
    quote = serializers.CharField()
    tick_size = DecimalString()
    lot_size = DecimalString()
    min_notional = DecimalString()
    underlying = serializers.SerializerMethodField()
    expiry = UtcDateTime(allow_null=True)
    strike = DecimalString(allow_null=True)
    option_type = serializers.SerializerMethodField()

    def get_underlying(self, obj) -> str | None:
        return obj.base if obj.kind == InstrumentKind.OPTION else None

    @extend_schema_field(serializers.ChoiceField(choices=["call", "put"], allow_null=True))
    def get_option_type(self, obj) -> str | None:
        return {"C": "call", "P": "put"}.get(obj.option_type)


class InstrumentsApi(APIView):
    permission_classes = [AllowAny]

    class QuerySerializer(serializers.Serializer):
        kind = ChoiceParam(InstrumentKind.values, message="Unknown kind.", hint="spot or option")
        underlying = ChoiceParam(
            list(services.UNDERLYINGS), case_insensitive=True, message="Unknown underlying.", hint="BTC or ETH"
        )

    @extend_schema(
        summary="List the instruments",
        parameters=[QuerySerializer],
        responses={200: InstrumentSerializer(many=True)},
        tags=["market data"],
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        instruments = selectors.instruments_active(kind=query["kind"], underlying=query["underlying"])
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
        time = UtcDateTime()

    @extend_schema(summary="Ticker", tags=["market data"], parameters=[SYMBOL_PATH], responses={200: OutputSerializer})
    def get(self, request, symbol: str):
        return Response(
            self.OutputSerializer(selectors.ticker(instrument=selectors.instrument_get(symbol=symbol))).data
        )


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
        sequence = serializers.IntegerField(
            help_text="the engine's sequence this book follows; deltas on /ws/market/ go on from it"
        )
        depth = serializers.IntegerField()

    class QuerySerializer(serializers.Serializer):
        depth = IntParam(default=20, low=1, high=500, help_text="levels a side")

    @extend_schema(
        summary="Order book",
        tags=["market data"],
        parameters=[SYMBOL_PATH, QuerySerializer],
        responses={200: OutputSerializer},
    )
    def get(self, request, symbol: str):
        instrument = selectors.instrument_get(symbol=symbol)
        depth = validated_query(self.QuerySerializer, request)["depth"]
        return Response(self.OutputSerializer(selectors.order_book(instrument=instrument, depth=depth)).data)


class TradesApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="PublicTrade")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(help_text="the trade's sequence on the book")
        price = DecimalString()
        quantity = DecimalString()
        side = serializers.ChoiceField(choices=["buy", "sell"], help_text="the taker's side")
        time = UtcDateTime()

    class QuerySerializer(serializers.Serializer):
        limit = IntParam(default=50, low=1, high=500)

    @extend_schema(
        summary="Recent public trades",
        tags=["market data"],
        parameters=[SYMBOL_PATH, QuerySerializer],
        responses={200: OutputSerializer(many=True)},
        description="Recent public trades on our book, newest first.",
    )
    def get(self, request, symbol: str):
        instrument = selectors.instrument_get(symbol=symbol)
        trades = selectors.recent_trades(
            instrument=instrument, limit=validated_query(self.QuerySerializer, request)["limit"]
        )
        return Response(self.OutputSerializer(trades, many=True).data)


class CandleSerializer(serializers.Serializer):
    time = UtcDateTime(source="open_time")
    open = DecimalString()
    high = DecimalString()
    low = DecimalString()
    close = DecimalString()
    volume = DecimalString()


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

    class QuerySerializer(serializers.Serializer):
        # In the order they are checked: the first bad one answers.
        start = TimeParam(help_text="ISO 8601 (or Unix seconds)")
        end = TimeParam(help_text="ISO 8601 (or Unix seconds)")
        limit = IntParam(default=500, low=1, high=selectors.MAX_CANDLES)
        interval = ChoiceParam(Candle.INTERVALS, default="1m", message="Unknown interval {value!r}.")

    @extend_schema(
        summary="Candles (OHLCV)",
        tags=["market data"],
        parameters=[
            SYMBOL_PATH,
            QuerySerializer,
            OpenApiParameter("format", str, enum=["json", "csv"], required=False, description="csv: a CSV download"),
        ],
        responses={
            (200, "application/json"): CandleSerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def get(self, request, symbol: str):
        instrument = selectors.instrument_get(symbol=symbol)
        query = validated_query(self.QuerySerializer, request)
        candles = selectors.candles_for(symbol=instrument.symbol, **query)
        response = Response(CandleSerializer(candles, many=True).data)
        if request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="{instrument.symbol}-{query["interval"]}.csv"'
        return response


class WatchlistApi(APIView):
    @extend_schema_serializer(component_name="WatchlistInput")
    class InputSerializer(serializers.Serializer):
        symbol = serializers.CharField(max_length=40)

    @extend_schema_serializer(component_name="WatchlistItem")
    class OutputSerializer(serializers.Serializer):
        symbol = serializers.CharField()

    # The list answers the symbols alone: ["BTC-USDT", ...].
    symbols = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        summary="Your watchlist",
        tags=["market data"],
        responses={200: {"type": "array", "items": {"type": "string"}}},
        description="The symbols on your watchlist.",
    )
    def get(self, request):
        return Response(
            self.symbols.to_representation([item.symbol for item in selectors.watchlist_for(user=request.user)])
        )

    @extend_schema(
        summary="Add a symbol to your watchlist",
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
    @extend_schema(
        summary="Remove a symbol from your watchlist",
        tags=["market data"],
        parameters=[SYMBOL_PATH],
        request=None,
        responses={204: None},
    )
    def delete(self, request, symbol: str):
        services.watchlist_remove(user=request.user, symbol=symbol)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
    open_interest = DecimalString(help_text="contracts held in open positions of this series, over all traders")


@extend_schema_serializer(component_name="OptionChainRow")
class OptionChainRowSerializer(serializers.Serializer):
    strike = DecimalString()
    call = OptionChainLegSerializer(required=False)
    put = OptionChainLegSerializer(required=False)


@extend_schema_serializer(component_name="OptionChainExpiry")
class OptionChainExpirySerializer(serializers.Serializer):
    expiry = UtcDateTime()
    years = serializers.FloatField(help_text="time to expiry in years")
    atm_vol = DecimalString()
    rows = OptionChainRowSerializer(many=True)


class OptionChainApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="OptionChain")
    class OutputSerializer(serializers.Serializer):
        underlying = serializers.ChoiceField(choices=list(services.UNDERLYINGS))
        index_price = DecimalString()
        time = UtcDateTime()
        expiries = OptionChainExpirySerializer(many=True)

    class QuerySerializer(serializers.Serializer):
        # In the order they are checked: the first bad one answers.
        expiry = TextParam(
            parse=lambda raw: _options().parse_expiry(raw),
            help_text="2026-12-25 (08:00 UTC) or ISO time; all live expiries if absent",
        )
        underlying = ChoiceParam(
            list(services.UNDERLYINGS),
            required=True,
            case_insensitive=True,
            message="underlying must be BTC or ETH.",
            hint="BTC or ETH.",
        )

    @extend_schema(
        summary="Option chain",
        tags=["market data"],
        parameters=[QuerySerializer],
        responses={
            200: OutputSerializer,
            **errors(
                {404: "unknown_expiry: no live series expire then.", 503: "index_stale: no fresh index to price from."}
            ),
        },
        description="Per strike: call and put mark in USDT and in the underlying, the counter's bid/ask in USDT, "
        "IV, delta, gamma, vega (USDT per vol point), theta (USDT per day) and open interest (contracts). "
        "503 index_stale when the index is stale.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        data = _options().chain(underlying=query["underlying"], expiry=query["expiry"])
        return Response(self.OutputSerializer(data).data)


def _options():
    from . import options  # the pricing (numpy) loads with the first chain, not with the URLs

    return options
