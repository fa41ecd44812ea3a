"""Routing and RFQ endpoints (API.md "Spot orders"): the aggregated book across our book and
the outside venues, and request-for-quote on a block."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.models import InstrumentKind
from marketdata.services import SPOT_MARKETS
from trading.api import IntParam, validated, validated_query
from trading.errors import NotFound
from trading.schema import DECIMAL_STRING, DecimalInput, DecimalString, UtcDateTime, errors

from . import routing_selectors
from .api import SpotSymbol
from .services import rfq as rfq_services

MAX_DEPTH = 100


# A level is [price, total quantity, {source: quantity}]: a list of mixed items, which a
# serializer field cannot say.
_AGGREGATED_LEVEL = {
    "type": "array",
    "minItems": 3,
    "maxItems": 3,
    "items": {"oneOf": [DECIMAL_STRING, {"type": "object", "additionalProperties": DECIMAL_STRING}]},
}


@extend_schema_field(_AGGREGATED_LEVEL)
class AggregatedLevelField(serializers.JSONField):
    pass


@extend_schema_serializer(component_name="RouteSource")
class RouteSourceSerializer(serializers.Serializer):
    name = serializers.CharField()
    taker_fee = DecimalString()


class AggregatedBookApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="AggregatedBook")
    class OutputSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        depth = serializers.IntegerField()
        bids = serializers.ListField(child=AggregatedLevelField(), help_text="highest price first")
        asks = serializers.ListField(child=AggregatedLevelField(), help_text="lowest price first")
        sources = RouteSourceSerializer(many=True)
        unavailable = serializers.ListField(child=serializers.CharField(), help_text="venues that did not answer")

    class QuerySerializer(serializers.Serializer):
        depth = IntParam(default=20, low=1, high=MAX_DEPTH)

    @extend_schema(
        summary="Our book and the venues' merged",
        tags=["spot"],
        responses={200: OutputSerializer},
        parameters=[OpenApiParameter("symbol", str, OpenApiParameter.PATH, enum=list(SPOT_MARKETS)), QuerySerializer],
        description="Our book and every outside venue's merged by price: each level is "
        "`[price, total_qty, {source: qty}]`, best first. `unavailable` names venues that did not answer.",
    )
    def get(self, request, symbol: str):
        from marketdata.selectors import instrument_get

        instrument = instrument_get(symbol=symbol)
        if instrument.kind != InstrumentKind.SPOT:
            raise NotFound(f"No spot market {symbol}.")
        depth = validated_query(self.QuerySerializer, request)["depth"]
        return Response(
            self.OutputSerializer(routing_selectors.aggregated_book(symbol=instrument.symbol, depth=depth)).data
        )


@extend_schema_serializer(component_name="RfqQuote")
class QuoteSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    quote_id = serializers.UUIDField(source="id", help_text="the same as id, the name option quotes use")
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    quantity = DecimalString()
    price = DecimalString()
    expires_at = UtcDateTime()
    status = serializers.ChoiceField(choices=["open", "accepted"])
    quote_amount = DecimalString(required=False, help_text="accepted quotes: the USDT exchanged")
    accepted_at = UtcDateTime(required=False)

    def to_representation(self, quote):
        data = super().to_representation(quote)
        if quote.accepted_at is None:  # an open quote has neither
            del data["quote_amount"], data["accepted_at"]
        return data


class RfqApi(APIView):
    @extend_schema_serializer(component_name="RfqInput")
    class InputSerializer(serializers.Serializer):
        """What orders.spot.services.rfq.rfq_quote_create reads."""

        symbol = SpotSymbol(max_length=40, help_text="another symbol is 404 not_found")
        side = serializers.ChoiceField(choices=["buy", "sell"])
        quantity = DecimalInput(help_text="a multiple of the pair's lot size")

    @extend_schema(
        summary="A firm quote for a block (RFQ)",
        tags=["spot"],
        request=InputSerializer,
        examples=[
            OpenApiExample("buy 2 BTC", request_only=True, value={"symbol": "BTC-USDT", "side": "buy", "quantity": "2"})
        ],
        responses={
            201: QuoteSerializer,
            **errors(
                {
                    404: "not_found: no spot market with that symbol.",
                    409: "insufficient_liquidity: not enough on the books to quote that size.",
                    503: "rfq_unavailable: no market maker is quoting.",
                }
            ),
        },
        description="A firm quote from the market maker for a block, valid a few seconds.",
    )
    def post(self, request):
        quote = rfq_services.rfq_quote_create(user=request.user, **validated(self.InputSerializer, request))
        return Response(QuoteSerializer(quote).data, status=status.HTTP_201_CREATED)


class RfqAcceptApi(APIView):
    @extend_schema(
        summary="Accept an RFQ quote",
        tags=["spot"],
        request=None,
        responses={200: QuoteSerializer, **errors({409: "insufficient_funds, quote_expired, quote_used."})},
        parameters=[
            OpenApiParameter("quote_id", str, OpenApiParameter.PATH, description="the quote's id (a UUID)"),
            OpenApiParameter("Idempotency-Key", str, location=OpenApiParameter.HEADER, required=False),
        ],
        description="Trade at exactly the quoted price. Repeating the accept with the same Idempotency-Key returns "
        "the original result.",
    )
    def post(self, request, quote_id):
        quote, replayed = rfq_services.rfq_quote_accept(
            user=request.user, quote_id=quote_id, idempotency_key=request.headers.get("Idempotency-Key", "")
        )
        response = Response(QuoteSerializer(quote).data, status=status.HTTP_200_OK)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response
