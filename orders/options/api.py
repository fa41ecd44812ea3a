"""Options counter API (API.md "USDT-mode options"): quotes, orders, positions, expiries."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import ChoiceParam, validated, validated_query
from trading.schema import DecimalInput, DecimalString, UtcDateTime, errors

from . import selectors, services
from .models import ExerciseOutcome, OptionSide, PositionStatus, SettlementState

PRICE = Decimal("0.01")  # USDT per contract, and contracts (the lot)
IV = Decimal("0.0001")
QUOTE_ERRORS = errors(
    {
        404: "not_found: unknown series.",
        409: "series_expired, insufficient_position (a sell quote for more than you hold).",
        422: "position_limit: the position would exceed the most one trader may hold in a series; risk_limit: "
        "a buy would take the counter's own exposure past a hard limit (fields.limit: counter_delta or "
        "counter_vega).",
        503: "index_stale: no fresh index to price from.",
    }
)
ORDER_ERRORS = errors(
    {
        403: "kyc_required: buying needs approved KYC (and csrf_failed for a browser session without its token).",
        404: "not_found: unknown series or quote.",
        409: "series_expired, quote_expired, quote_index_moved, quote_used, price_limit_exceeded, insufficient_funds, "
        "insufficient_position, idempotency_conflict.",
        422: "position_limit: the position would exceed the most one trader may hold in a series; risk_limit: "
        "a buy would take the counter's own exposure past a hard limit (fields.limit: counter_delta or "
        "counter_vega).",
        503: "index_stale: no fresh index to price from.",
    }
)


# --- quotes ---------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="OptionQuote")
class OptionQuoteSerializer(serializers.Serializer):
    quote_id = serializers.UUIDField(source="id")
    id = serializers.UUIDField(help_text="the same as quote_id, the name RFQ quotes use")
    series = serializers.CharField()
    underlying = serializers.CharField()
    side = serializers.ChoiceField(choices=OptionSide.values)
    contracts = DecimalString(step=PRICE)
    price_usdt = DecimalString(step=PRICE, help_text="per contract")
    total_usdt = DecimalString(asset="USDT")
    price_underlying = DecimalString(asset_source="underlying", help_text="per contract, in BTC/ETH at the index")
    mark_usdt = DecimalString(step=PRICE)
    index_price = DecimalString()
    iv = DecimalString(step=IV)
    expires_at = UtcDateTime()


class OptionQuotesApi(APIView):
    @extend_schema_serializer(component_name="OptionQuoteInput")
    class InputSerializer(serializers.Serializer):
        series = serializers.CharField(max_length=40, help_text="e.g. BTC-20261225-100000-C")
        side = serializers.ChoiceField(choices=["buy", "sell"])
        contracts = DecimalInput(help_text='a multiple of the lot size 0.01, e.g. "0.5"')

    @extend_schema(
        summary="A firm option quote",
        request=InputSerializer,
        responses={201: OptionQuoteSerializer, **QUOTE_ERRORS},
        examples=[
            OpenApiExample(
                "buy", request_only=True, value={"series": "BTC-20261225-100000-C", "side": "buy", "contracts": "0.5"}
            )
        ],
        tags=["options"],
        description="A firm counter price: mark plus the spread to buy, minus it to sell, in USDT per contract at the "
        "live index. Valid for OPTION_QUOTE_TTL_SECONDS and for one order.",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        quote = services.options_quote(
            user=request.user, series=data["series"], side=data["side"], contracts=data["contracts"]
        )
        return Response(OptionQuoteSerializer(quote).data, status=status.HTTP_201_CREATED)


# --- orders ---------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="OptionOrder")
class OptionOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_order_id = serializers.CharField()
    series = serializers.CharField()
    underlying = serializers.CharField()
    side = serializers.ChoiceField(choices=OptionSide.values, help_text="buy (to open) or sell (to close)")
    kind = serializers.ChoiceField(choices=["open", "close"])
    contracts = DecimalString(step=PRICE)
    price_usdt = DecimalString(step=PRICE, help_text="per contract")
    total_usdt = DecimalString(asset="USDT", help_text="paid (buy) or received (sell)")
    underlying_qty = DecimalString(asset_source="underlying", help_text="total_usdt in BTC/ETH at the index")
    index_price = DecimalString()
    iv = DecimalString(step=IV)
    limit_price_usdt = DecimalString(step=PRICE, allow_null=True)
    quote_id = serializers.UUIDField(allow_null=True)
    realized_pnl_usdt = DecimalString(
        asset="USDT", allow_null=True, help_text="sell: proceeds minus the cost of what was sold"
    )
    status = serializers.ChoiceField(choices=["filled"], help_text="the counter fills in full or refuses")
    settlement_state = serializers.ChoiceField(choices=SettlementState.choices, help_text="the back office's progress")
    created_at = UtcDateTime()


@extend_schema_serializer(component_name="OptionOrderPosition")
class OrderPositionSerializer(serializers.Serializer):
    series = serializers.CharField()
    status = serializers.ChoiceField(choices=PositionStatus.choices)
    contracts = DecimalString(step=PRICE)
    average_price_usdt = DecimalString(asset="USDT")
    realized_pnl_usdt = DecimalString(asset="USDT")


@extend_schema_serializer(component_name="OptionOrderCreated")
class OptionOrderCreatedSerializer(OptionOrderSerializer):
    position = OrderPositionSerializer(source="position_after", help_text="the position in the series after this order")


class OptionOrdersApi(ListAPIView):
    serializer_class = OptionOrderSerializer

    @extend_schema_serializer(component_name="OptionOrderInput")
    class InputSerializer(serializers.Serializer):
        quote_id = serializers.UUIDField(required=False, allow_null=True, help_text="a quote from POST /options/quotes")
        series = serializers.CharField(required=False, allow_blank=True, max_length=40)
        side = serializers.ChoiceField(choices=["buy", "sell"], required=False)
        contracts = DecimalInput(required=False, help_text='e.g. "0.5"')
        limit_price_usdt = DecimalInput(
            required=False, help_text="the most you pay per contract (buy), the least you take (sell)"
        )
        client_order_id = serializers.CharField(required=False, allow_blank=True, max_length=64)

    def get_queryset(self):
        return selectors.option_orders_for(user=self.request.user)

    @extend_schema(
        summary="Your option orders", tags=["options"], description="Your option orders, newest first, paginated."
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Buy or sell an option against the counter",
        request=InputSerializer,
        responses={201: OptionOrderCreatedSerializer, **ORDER_ERRORS},
        examples=[
            OpenApiExample("at a quote", request_only=True, value={"quote_id": "9b2f4d7e-1c3a-4e5f-8a6b-0c1d2e3f4a5b"}),
            OpenApiExample(
                "at a limit",
                request_only=True,
                value={
                    "series": "BTC-20261225-100000-C",
                    "side": "buy",
                    "contracts": "0.5",
                    "limit_price_usdt": "1500",
                },
            ),
        ],
        tags=["options"],
        description="Fills against the counter in USDT: `{quote_id}`, or `{series, side, contracts, limit_price_usdt}` "
        "at the live price if it is no worse than the limit. Buying opens or adds to a long position and debits USDT "
        "at once; selling closes (part of) it and credits USDT at once. With a `client_order_id` seen before, the "
        "original order is returned (header `Idempotent-Replayed: true`).",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        order, replayed = services.options_order_place(
            user=request.user,
            quote_id=data.get("quote_id"),
            series=data.get("series"),
            side=data.get("side"),
            contracts=data.get("contracts"),
            limit_price_usdt=data.get("limit_price_usdt"),
            client_order_id=data.get("client_order_id"),
        )
        order.position_after = selectors.option_position_get(user=request.user, instrument_id=order.instrument_id)
        response = Response(OptionOrderCreatedSerializer(order).data, status=status.HTTP_201_CREATED)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


# --- positions ------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="OptionPosition")
class OptionPositionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    series = serializers.CharField()
    underlying = serializers.CharField()
    option_type = serializers.SerializerMethodField()
    strike = DecimalString(source="instrument.strike")
    expiry = UtcDateTime(source="instrument.expiry")
    status = serializers.ChoiceField(choices=PositionStatus.choices)
    contracts = DecimalString(step=PRICE)
    average_price_usdt = DecimalString(asset="USDT")
    cost_usdt = DecimalString(asset="USDT", help_text="what the open contracts cost")
    index_price = DecimalString(allow_null=True)
    mark_price_usdt = DecimalString(
        step=PRICE, allow_null=True, help_text="per contract; null while the index is stale"
    )
    close_price_usdt = DecimalString(
        step=PRICE, allow_null=True, help_text="what the counter pays per contract to close now"
    )
    mark_value_usdt = DecimalString(asset="USDT", allow_null=True)
    unrealized_pnl_usdt = DecimalString(asset="USDT", allow_null=True, help_text="mark value minus cost")
    realized_pnl_usdt = DecimalString(asset="USDT", help_text="from closes and expiry so far")
    opened_at = UtcDateTime()
    closed_at = UtcDateTime(allow_null=True)

    @extend_schema_field(serializers.ChoiceField(choices=["call", "put"]))
    def get_option_type(self, obj) -> str:
        return {"C": "call", "P": "put"}[obj.instrument.option_type]


class OptionPositionsApi(APIView):
    class QuerySerializer(serializers.Serializer):
        status = ChoiceParam(
            ["open", "closed", "all"],
            default="open",
            message="status must be open, closed or all.",
            hint="open, closed or all.",
        )

    @extend_schema(
        summary="Your option positions",
        parameters=[QuerySerializer],
        responses={200: OptionPositionSerializer(many=True)},
        tags=["options"],
        description="Your option positions. Open ones carry their live mark (the chain's) and unrealized PnL in USDT; "
        "the mark fields are null while the index is stale.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        positions = selectors.option_positions_for(user=request.user, status=query["status"])
        return Response(OptionPositionSerializer(positions, many=True).data)


# --- expiries -------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="OptionExercise")
class OptionExerciseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    series = serializers.CharField()
    underlying = serializers.CharField()
    expiry = UtcDateTime()
    outcome = serializers.ChoiceField(
        choices=ExerciseOutcome.choices, help_text="exercised (in the money, paid in USDT) or expired (worthless)"
    )
    contracts = DecimalString(step=PRICE)
    settlement_price = DecimalString(help_text="the index's 30-minute TWAP before expiry")
    payout_usdt = DecimalString(asset="USDT")
    realized_pnl_usdt = DecimalString(asset="USDT")
    settlement_state = serializers.ChoiceField(choices=SettlementState.choices)
    created_at = UtcDateTime()


class OptionExercisesApi(ListAPIView):
    serializer_class = OptionExerciseSerializer

    def get_queryset(self):
        return selectors.option_exercises_for(user=self.request.user)

    @extend_schema(
        summary="What expiry did to your positions",
        tags=["options"],
        description="What expiry did to your positions, newest first, paginated.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
