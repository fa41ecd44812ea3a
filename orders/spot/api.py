"""Spot order entry and execution reports (API.md "Spot orders").

POST returns as soon as the order and its hold are committed (status ``new``); the engine
runner takes it within milliseconds, and the client follows it on ``/ws/user/`` or with
GET. ``?wait=1`` on POST waits up to ``SPOT_ORDER_WAIT_SECONDS`` for the engine's first
verdict. DELETE waits for the cancel to be carried out (or that long).
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.services import SPOT_MARKETS
from trading.schema import DecimalInput, DecimalString, errors
from trading.api import validated
from trading.money import parse_int

from . import selectors
from .engine import BUY, FOK, GTC, IOC, SELL
from .models import SpotOrder, SpotStatus
from .services import entry as spot_services

ORDER_ERRORS = errors({
    400: "validation_error (`fields` names the field), min_notional, max_order_size, price_out_of_band.",
    404: "not_found: no spot market with that symbol.",
    409: "insufficient_funds, max_open_orders, idempotency_conflict (the client_order_id was used for another order).",
    503: "index_stale: market orders and trailing stops need a live index.",
})


def _text(value) -> str | None:
    return None if value is None else f"{Decimal(value).normalize():f}"


def order_dict(order: SpotOrder, fills=None) -> dict:
    filled = order.filled_quantity
    data = {
        "id": order.pk,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "time_in_force": order.time_in_force,
        "post_only": order.post_only,
        "route": order.route,
        "status": order.status,
        "quantity": _text(order.quantity),
        "quote_quantity": _text(order.quote_quantity),
        "price": _text(order.price),
        "stop_price": _text(order.stop_price),
        "trail_amount": _text(order.trail_amount),
        "trail_percent": _text(order.trail_percent),
        "display_quantity": _text(order.display_quantity),
        "filled_quantity": _text(filled),
        "filled_quote": _text(order.filled_quote),
        "average_price": _text((order.filled_quote / filled).quantize(order.price_quantum)) if filled else None,
        "fees_paid": _text(order.fees_paid),
        "held": {"asset": order.hold_asset, "amount": _text(order.hold_amount)},
        "reject_reason": order.reject_reason or None,
        "cancel_reason": order.cancel_reason or None,
        "parent_id": order.parent_id,
        "created_at": order.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": order.updated_at.isoformat().replace("+00:00", "Z"),
    }
    if fills is not None:
        data["fills"] = [fill_dict(fill) for fill in fills]
    return data


def fill_dict(fill) -> dict:
    return {
        "trade_id": fill.trade_id,
        "order_id": fill.order_id,
        "symbol": fill.symbol,
        "side": fill.side,
        "price": _text(fill.price),
        "quantity": _text(fill.quantity),
        "quote_amount": _text(fill.quote_amount),
        "fee": _text(fill.fee),
        "fee_asset": fill.fee_asset,
        "liquidity": fill.liquidity,
        "time": fill.time.isoformat().replace("+00:00", "Z"),
    }


# The views answer order_dict()/fill_dict(); these serializers describe those dicts.
_SIDES = (BUY, SELL)
_TIFS = (GTC, IOC, FOK)
_ROUTES = ("book", "smart")


@extend_schema_serializer(component_name="SpotOrderHeld")
class HeldSerializer(serializers.Serializer):
    asset = serializers.CharField()
    amount = DecimalString(allow_null=True, help_text="still reserved for the order's remainder")


@extend_schema_serializer(component_name="SpotFill")
class FillSerializer(serializers.Serializer):
    trade_id = serializers.IntegerField()
    order_id = serializers.IntegerField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=_SIDES)
    price = DecimalString()
    quantity = DecimalString()
    quote_amount = DecimalString()
    fee = DecimalString()
    fee_asset = serializers.CharField()
    liquidity = serializers.ChoiceField(choices=["maker", "taker"])
    time = serializers.DateTimeField()


@extend_schema_serializer(component_name="SpotOrder")
class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_order_id = serializers.CharField(allow_blank=True)
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=_SIDES)
    type = serializers.ChoiceField(choices=spot_services.ORDER_TYPES)
    time_in_force = serializers.ChoiceField(choices=_TIFS)
    post_only = serializers.BooleanField()
    route = serializers.ChoiceField(choices=_ROUTES)
    status = serializers.ChoiceField(choices=SpotStatus.choices)
    quantity = DecimalString(allow_null=True)
    quote_quantity = DecimalString(allow_null=True)
    price = DecimalString(allow_null=True)
    stop_price = DecimalString(allow_null=True)
    trail_amount = DecimalString(allow_null=True)
    trail_percent = DecimalString(allow_null=True)
    display_quantity = DecimalString(allow_null=True, help_text="iceberg: the visible part")
    filled_quantity = DecimalString()
    filled_quote = DecimalString()
    average_price = DecimalString(allow_null=True)
    fees_paid = DecimalString()
    held = HeldSerializer()
    reject_reason = serializers.CharField(allow_null=True)
    cancel_reason = serializers.CharField(allow_null=True)
    parent_id = serializers.IntegerField(allow_null=True, help_text="the smart order this one is a child of")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="SpotOrderChild")
class OrderChildSerializer(serializers.Serializer):
    """A smart order's child: on our book (an order's fields too) or at an outside venue."""

    venue = serializers.CharField()
    client_order_id = serializers.CharField(allow_blank=True)
    side = serializers.ChoiceField(choices=_SIDES)
    status = serializers.CharField()
    quantity = DecimalString(allow_null=True)
    price = DecimalString(allow_null=True)
    filled_quantity = DecimalString(allow_null=True)
    filled_quote = DecimalString(allow_null=True)
    average_price = DecimalString(allow_null=True)
    fees_paid = DecimalString(allow_null=True)
    error = serializers.CharField(allow_null=True, required=False, help_text="venue children: why it failed")


@extend_schema_serializer(component_name="SpotOrderDetail")
class OrderDetailSerializer(OrderSerializer):
    fills = FillSerializer(many=True)
    children = OrderChildSerializer(many=True, required=False, help_text="smart orders only")


@extend_schema_field({"type": "string", "enum": list(SPOT_MARKETS)})
class SpotSymbol(serializers.CharField):
    """A spot market's symbol. Documented as the markets there are; checked by order entry,
    which answers 404 for one that is not listed (any case is accepted)."""


class JsonBoolean(serializers.BooleanField):
    """A JSON true or false, not "yes", 1 or "true"."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


@extend_schema_serializer(component_name="SpotOrderInput")
class OrderInputSerializer(serializers.Serializer):
    """What order entry reads: shapes and choices here; amounts, prices and the rules of each
    order type are checked against the market by ``orders.spot.services.entry.order_request``."""

    symbol = SpotSymbol(max_length=40, help_text="another symbol is 404 not_found")
    side = serializers.ChoiceField(choices=_SIDES)
    type = serializers.ChoiceField(choices=spot_services.ORDER_TYPES)
    time_in_force = serializers.ChoiceField(choices=_TIFS, required=False, help_text="default IOC for market orders, else GTC")
    post_only = JsonBoolean(required=False, help_text="GTC limit orders only")
    quantity = DecimalInput(required=False, help_text="a multiple of the lot size; every type but a quote_quantity market buy")
    quote_quantity = DecimalInput(required=False, help_text="market buys: spend this much USDT instead")
    price = DecimalInput(required=False, help_text="limit and stop_limit: a multiple of the tick size")
    stop_price = DecimalInput(required=False, help_text="stop_market and stop_limit")
    trail_amount = DecimalInput(required=False, help_text="trailing_stop: in price units")
    trail_percent = DecimalInput(required=False, help_text="trailing_stop: in percent, below 100")
    display_quantity = DecimalInput(required=False, help_text="iceberg (GTC limit): the visible part")
    route = serializers.ChoiceField(choices=_ROUTES, required=False, help_text="smart: market and IOC limit orders")
    client_order_id = serializers.RegexField(
        r"^[A-Za-z0-9._:\-]{1,64}$", required=False, help_text="your id; replaying it returns the original order"
    )


class SpotOrdersApi(APIView):
    pagination_class = PageNumberPagination

    @extend_schema(
        tags=["spot"], parameters=[OpenApiParameter("status", str, description="open, closed, all (default) or a status"),
                                   OpenApiParameter("symbol", str)],
        responses={200: OrderSerializer(many=True)}, operation_id="spot_orders_list",
        description="Your spot orders, newest first, paginated.",
    )
    def get(self, request):
        orders = selectors.spot_orders_for(user=request.user, status=request.query_params.get("status", "all"),
                                           symbol=request.query_params.get("symbol"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response([order_dict(order) for order in page])

    @extend_schema(
        tags=["spot"], request=OrderInputSerializer, operation_id="spot_orders_create",
        responses={201: OrderSerializer, 200: OpenApiResponse(OrderSerializer, description="a replayed client_order_id"),
                   **ORDER_ERRORS},
        parameters=[OpenApiParameter("wait", bool, description="wait briefly for the engine's verdict")],
        examples=[OpenApiExample("limit buy", request_only=True, value={
            "symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": "0.01", "price": "65000"})],
        description="Enter a spot order; the funds it may cost are held at once. A replayed client_order_id returns "
        "the original order (header `Idempotent-Replayed: true`).",
    )
    def post(self, request):
        fields = validated(OrderInputSerializer, request)
        order, replayed = spot_services.spot_order_place(user=request.user, request=spot_services.order_request(**fields))
        if request.query_params.get("wait") in ("1", "true") and not replayed:
            order = spot_services.spot_order_wait(order_id=order.pk)
        response = Response(order_dict(order), status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class SpotOrderApi(APIView):
    @extend_schema(tags=["spot"], responses={200: OrderDetailSerializer}, operation_id="spot_order_retrieve",
                   description="One of your orders, with its fills (and a smart order's children).")
    def get(self, request, order_id: int):
        order = selectors.spot_order_get(user=request.user, order_id=order_id)
        if order.route == "smart":
            data = order_dict(order, fills=selectors.spot_order_fills(order=order))
            data["children"] = selectors.smart_order_children(parent=order, order_dict=order_dict)
            return Response(data)
        return Response(order_dict(order, fills=selectors.spot_order_fills(order=order)))

    @extend_schema(tags=["spot"], request=None, operation_id="spot_order_cancel",
                   responses={200: OrderSerializer, **errors({409: "order_not_open: already final."})},
                   description="Cancel the order's open remainder; its hold is released.")
    def delete(self, request, order_id: int):
        selectors.spot_order_get(user=request.user, order_id=order_id)
        order = spot_services.spot_order_cancel(user=request.user, order_id=order_id)
        return Response(order_dict(order))


class FillsApi(APIView):
    @extend_schema(tags=["spot"], parameters=[OpenApiParameter("symbol", str),
                                              OpenApiParameter("limit", int, description="1 to 500 (default 100)")],
                   responses={200: FillSerializer(many=True)}, operation_id="spot_fills_list",
                   description="Your fills (execution reports), newest first.")
    def get(self, request):
        limit = parse_int(request.query_params.get("limit"), field="limit", default=100, low=1, high=500)
        fills = selectors.spot_fills_for(user=request.user, symbol=request.query_params.get("symbol"), limit=limit)
        return Response([fill_dict(fill) for fill in fills])
