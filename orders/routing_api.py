"""Routing and RFQ endpoints (API.md "Spot orders"): the aggregated book across our book and
the outside venues, and request-for-quote on a block."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.models import InstrumentKind
from trading.errors import NotFound, ValidationFailed

from . import routing_selectors
from .models import RfqQuote
from .services import rfq as rfq_services

MAX_DEPTH = 100


def _depth(request) -> int:
    raw = request.query_params.get("depth")
    if raw in (None, ""):
        return 20
    try:
        depth = int(raw)
    except ValueError:
        raise ValidationFailed("depth must be an integer.", fields={"depth": ["Not an integer."]}) from None
    if not 1 <= depth <= MAX_DEPTH:
        raise ValidationFailed(f"depth must be between 1 and {MAX_DEPTH}.", fields={"depth": [f"Between 1 and {MAX_DEPTH}."]})
    return depth


class AggregatedBookApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["spot"], parameters=[OpenApiParameter("depth", int, required=False)], responses={200: dict},
                   description="Our book and every outside venue's merged by price: each level is "
                   "`[price, total_qty, {source: qty}]`, best first. `unavailable` names venues that did not answer.")
    def get(self, request, symbol: str):
        from marketdata.selectors import instrument_get

        instrument = instrument_get(symbol=symbol)
        if instrument.kind != InstrumentKind.SPOT:
            raise NotFound(f"No spot market {symbol}.")
        return Response(routing_selectors.aggregated_book(symbol=instrument.symbol, depth=_depth(request)))


def quote_dict(quote: RfqQuote) -> dict:
    data = {
        "id": str(quote.pk), "symbol": quote.symbol, "side": quote.side, "quantity": f"{quote.quantity.normalize():f}",
        "price": f"{quote.price.normalize():f}", "expires_at": quote.expires_at.isoformat().replace("+00:00", "Z"),
        "status": "accepted" if quote.accepted_at else "open",
    }
    if quote.accepted_at:
        data["quote_amount"] = f"{quote.quote_amount.normalize():f}"
        data["accepted_at"] = quote.accepted_at.isoformat().replace("+00:00", "Z")
    return data


_QUOTE_SCHEMA = inline_serializer("RfqQuote", fields={
    "id": serializers.UUIDField(), "symbol": serializers.CharField(), "side": serializers.CharField(),
    "quantity": serializers.CharField(), "price": serializers.CharField(), "expires_at": serializers.DateTimeField(),
    "status": serializers.CharField(help_text="open or accepted"),
})


class RfqApi(APIView):
    @extend_schema(
        tags=["spot"], responses={201: _QUOTE_SCHEMA},
        request=inline_serializer("RfqInput", fields={"symbol": serializers.CharField(),
                                                      "side": serializers.ChoiceField(["buy", "sell"]),
                                                      "quantity": serializers.CharField()}),
        description="A firm quote from the market maker for a block, valid a few seconds. Errors: validation_error "
        "(400), not_found (404), insufficient_liquidity (409), rfq_unavailable (503).",
    )
    def post(self, request):
        quote = rfq_services.rfq_quote_create(user=request.user, data=request.data)
        return Response(quote_dict(quote), status=status.HTTP_201_CREATED)


class RfqAcceptApi(APIView):
    @extend_schema(
        tags=["spot"], request=None, responses={200: _QUOTE_SCHEMA},
        parameters=[OpenApiParameter("Idempotency-Key", str, location=OpenApiParameter.HEADER, required=False)],
        description="Trade at exactly the quoted price. Errors: not_found (404), insufficient_funds, quote_expired, "
        "quote_used (409). Repeating the accept with the same Idempotency-Key returns the original result.",
    )
    def post(self, request, quote_id):
        quote, replayed = rfq_services.rfq_quote_accept(
            user=request.user, quote_id=quote_id, idempotency_key=request.headers.get("Idempotency-Key", ""))
        response = Response(quote_dict(quote), status=status.HTTP_200_OK)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response
