"""Spot order entry and execution reports (API.md "Spot orders").

POST returns as soon as the order and its hold are committed (status ``new``); the engine
runner takes it within milliseconds, and the client follows it on ``/ws/user/`` or with
GET. ``?wait=1`` on POST waits up to ``SPOT_ORDER_WAIT_SECONDS`` for the engine's first
verdict. DELETE waits for the cancel to be carried out (or that long), PATCH (an amend) for
the engine's verdict on the change.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.services import SPOT_MARKETS
from trading.api import ChoiceParam, FlagParam, IntParam, TextParam, validated, validated_query
from trading.errors import Conflict
from trading.schema import DecimalInput, DecimalString, UtcDateTime, errors

from . import selectors
from . import services as spot_services
from .engine import BUY, FOK, GTC, IOC, SELL, STP_MODES
from .models import AmendStatus, SpotOrder, SpotStatus
from .routing_selectors import OUR_BOOK
from .services.entry import ORDER_TYPES

ORDER_ERRORS = errors(
    {
        400: "validation_error (`fields` names the field), min_notional, max_order_size, price_out_of_band.",
        404: "not_found: no spot market with that symbol.",
        409: "insufficient_funds, max_open_orders, idempotency_conflict (the client_order_id was used for "
        "another order).",
        503: "index_stale: market orders and trailing stops need a live index.",
    }
)


_SIDES = (BUY, SELL)
_TIFS = (GTC, IOC, FOK)
_ROUTES = ("book", "smart")


class _Reason(serializers.CharField):
    """A reason code, or null when there is none (blank in the database)."""

    def to_representation(self, value):
        return value or None


@extend_schema_serializer(component_name="SpotOrderHeld")
class HeldSerializer(serializers.Serializer):
    asset = serializers.CharField(source="hold_asset")
    amount = DecimalString(source="hold_amount", allow_null=True, help_text="still reserved for the order's remainder")


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
    time = UtcDateTime()


@extend_schema_serializer(component_name="SpotOrder")
class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_order_id = serializers.CharField(allow_blank=True)
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=_SIDES)
    type = serializers.ChoiceField(choices=ORDER_TYPES)
    time_in_force = serializers.ChoiceField(choices=_TIFS)
    post_only = serializers.BooleanField()
    route = serializers.ChoiceField(choices=_ROUTES)
    stp = serializers.ChoiceField(choices=STP_MODES, help_text="self-trade prevention mode")
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
    held = HeldSerializer(source="*")
    reject_reason = _Reason(allow_null=True)
    cancel_reason = _Reason(allow_null=True)
    parent_id = serializers.IntegerField(allow_null=True, help_text="the smart order this one is a child of")
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class VenueChildSerializer(serializers.Serializer):
    """A smart order's child at an outside venue."""

    venue = serializers.CharField()
    client_order_id = serializers.CharField(allow_blank=True)
    side = serializers.ChoiceField(choices=_SIDES)
    quantity = DecimalString(allow_null=True)
    price = DecimalString(allow_null=True)
    status = serializers.CharField()
    filled_quantity = DecimalString(allow_null=True)
    filled_quote = DecimalString(allow_null=True)
    average_price = DecimalString(allow_null=True)
    fees_paid = DecimalString(allow_null=True)
    error = serializers.CharField(allow_null=True, required=False, help_text="venue children: why it failed")


@extend_schema_serializer(component_name="SpotOrderChild")
class OrderChildSerializer(VenueChildSerializer):
    """A smart order's child: on our book (``venue`` is ``book``: an order, with every field of
    one) or at an outside venue (the fields above)."""


# The fields a child on our book has besides (optional: a venue child has none of them).
OrderChildSerializer._declared_fields.update(
    {
        name: type(field)(
            *field._args, **{**{k: v for k, v in field._kwargs.items() if k != "source"}, "required": False}
        )
        for name, field in OrderSerializer._declared_fields.items()
        if name not in OrderChildSerializer._declared_fields
    }
)


@extend_schema_serializer(component_name="SpotOrderDetail")
class OrderDetailSerializer(OrderSerializer):
    """Documents ``order_dict(order, fills=..., children=...)``."""

    fills = FillSerializer(many=True)
    children = OrderChildSerializer(many=True, required=False, help_text="smart orders only")


def order_dict(order: SpotOrder, fills=None, children=None) -> dict:
    """An order as the API and ``/ws/user/`` show it, with its fills and a smart order's
    children when they are given."""
    data = OrderSerializer(order).data
    if fills is not None:
        data["fills"] = FillSerializer(fills, many=True).data
    if children is not None:
        # A child on our book is an order_dict() already; a venue child goes through its serializer.
        data["children"] = [
            child if child["venue"] == OUR_BOOK else VenueChildSerializer(child).data for child in children
        ]
    return data


def fill_dict(fill) -> dict:
    return FillSerializer(fill).data


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
    type = serializers.ChoiceField(choices=ORDER_TYPES)
    time_in_force = serializers.ChoiceField(
        choices=_TIFS, required=False, help_text="default IOC for market orders, else GTC"
    )
    post_only = JsonBoolean(required=False, help_text="GTC limit orders only")
    quantity = DecimalInput(
        required=False, help_text="a multiple of the lot size; every type but a quote_quantity market buy"
    )
    quote_quantity = DecimalInput(required=False, help_text="market buys: spend this much USDT instead")
    price = DecimalInput(required=False, help_text="limit and stop_limit: a multiple of the tick size")
    stop_price = DecimalInput(required=False, help_text="stop_market and stop_limit")
    trail_amount = DecimalInput(required=False, help_text="trailing_stop: in price units")
    trail_percent = DecimalInput(required=False, help_text="trailing_stop: in percent, below 100")
    display_quantity = DecimalInput(required=False, help_text="iceberg (GTC limit): the visible part")
    route = serializers.ChoiceField(choices=_ROUTES, required=False, help_text="smart: market and IOC limit orders")
    stp = serializers.ChoiceField(
        choices=STP_MODES,
        required=False,
        help_text="self-trade prevention, when it meets your own resting order: expire_maker (default) cancels "
        "the resting order, expire_taker this order's remainder, expire_both both",
    )
    client_order_id = serializers.RegexField(
        r"^[A-Za-z0-9._:\-]{1,64}$", required=False, help_text="your id; replaying it returns the original order"
    )


@extend_schema_serializer(component_name="SpotOrderAmendInput")
class AmendInputSerializer(serializers.Serializer):
    """A new price, a new total quantity, or both. Checked against the order's market and type
    by ``orders.spot.services.amend.spot_order_amend``."""

    price = DecimalInput(required=False, help_text="limit and stop_limit orders: the new price, a multiple of the tick")
    quantity = DecimalInput(
        required=False,
        help_text="the new total quantity, filled part included, a multiple of the lot; more than what filled",
    )


@extend_schema_serializer(component_name="SpotAmend")
class AmendSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AmendStatus.choices, help_text="pending until the engine decides")
    price = DecimalString(allow_null=True, help_text="as asked; null: unchanged")
    quantity = DecimalString(allow_null=True, help_text="as asked; null: unchanged")
    reason = _Reason(allow_null=True, help_text="rejected: why")
    priority_kept = serializers.BooleanField(
        allow_null=True, help_text="applied: true if the order kept its place in the queue (a smaller quantity only)"
    )


@extend_schema_serializer(component_name="SpotOrderAmended")
class AmendedOrderSerializer(OrderSerializer):
    amend = AmendSerializer()


AMEND_REFUSALS = {
    "order_not_open": "The order ended before the engine could change it.",
    "insufficient_funds": "The order traded meanwhile and the change needs more funds than are held for it.",
    "post_only_would_take": "At that price the post-only order would trade at once.",
    "amend_below_filled": "The new quantity is not more than what has filled.",
    "amend_no_change": "That is the order's price and quantity already.",
    "amend_not_allowed": "This order cannot be changed that way.",
    "trading_halted": "Trading is halted; only a smaller quantity can be asked now.",
}


class CancelAllInputSerializer(serializers.Serializer):
    symbol = serializers.CharField(
        required=False, allow_blank=False, max_length=20, help_text="only this market's orders (default: every market)"
    )


@extend_schema_serializer(component_name="SpotCancelAll")
class CancelAllSerializer(serializers.Serializer):
    symbol = serializers.CharField(allow_null=True, help_text="the market asked for, or null for every market")
    requested = serializers.IntegerField(help_text="how many open orders were asked to cancel")
    cancelled = serializers.IntegerField(help_text="how many of them are no longer open when this answers")
    orders = OrderSerializer(many=True, help_text="those orders as they are when this answers, oldest first")


CANCEL_ALL_DESCRIPTION = (
    "Cancel every open order of yours (on `symbol`, or on every market) in one request; each "
    "hold is released. Each order goes the way of `DELETE /orders/{id}`: the engine cancels its "
    "remainder (a part already matched stays filled). Waits briefly for the engine and answers "
    "the orders as they are then; none open is `requested: 0`."
)


def cancel_all_answer(user, symbol: str | None) -> dict:
    orders = spot_services.spot_orders_cancel_mine(user=user, symbol=symbol)
    return CancelAllSerializer(
        {
            "symbol": symbol.strip().upper() if symbol else None,
            "requested": len(orders),
            "cancelled": sum(1 for order in orders if not order.is_live),
            "orders": orders,
        }
    ).data


class SpotOrdersApi(APIView):
    pagination_class = PageNumberPagination

    class QuerySerializer(serializers.Serializer):
        status = ChoiceParam(
            [*selectors.SPOT_STATUS_FILTERS, *SpotStatus.values],
            default="all",
            message="status must be open, closed, all or an order status.",
            hint="open, closed, all, or a status.",
            help_text="open, closed, all (default) or one status",
        )
        symbol = TextParam()

    @extend_schema(
        summary="Your spot orders",
        tags=["spot"],
        parameters=[QuerySerializer],
        responses={200: OrderSerializer(many=True)},
        operation_id="spot_orders_list",
        description="Your spot orders, newest first, paginated.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        orders = selectors.spot_orders_for(user=request.user, status=query["status"], symbol=query["symbol"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderSerializer(page, many=True).data)

    @extend_schema(
        summary="Enter a spot order",
        tags=["spot"],
        request=OrderInputSerializer,
        operation_id="spot_orders_create",
        responses={
            201: OrderSerializer,
            200: OpenApiResponse(OrderSerializer, description="a replayed client_order_id"),
            **ORDER_ERRORS,
        },
        parameters=[OpenApiParameter("wait", bool, description="wait briefly for the engine's verdict")],
        examples=[
            OpenApiExample(
                "limit buy",
                request_only=True,
                value={"symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": "0.01", "price": "65000"},
            )
        ],
        description="Enter a spot order; the funds it may cost are held at once. A replayed client_order_id returns "
        "the original order (header `Idempotent-Replayed: true`).",
    )
    def post(self, request):
        fields = validated(OrderInputSerializer, request)
        order, replayed = spot_services.spot_order_place(
            user=request.user, request=spot_services.order_request(**fields)
        )
        if request.query_params.get("wait") in ("1", "true") and not replayed:
            order = spot_services.spot_order_wait(order_id=order.pk)
        response = Response(order_dict(order), status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    class CancelQuerySerializer(serializers.Serializer):
        symbol = TextParam(help_text="only this market's orders (default: every market)")

    @extend_schema(
        summary="Cancel all your spot orders",
        tags=["spot"],
        request=None,
        parameters=[CancelQuerySerializer],
        operation_id="spot_orders_delete_all",
        responses={200: CancelAllSerializer, **errors({404: "not_found: no spot market with that symbol."})},
        description=CANCEL_ALL_DESCRIPTION + " The same as `POST /orders/cancel-all`.",
    )
    def delete(self, request):
        query = validated_query(self.CancelQuerySerializer, request)
        return Response(cancel_all_answer(request.user, query["symbol"]))


class SpotOrdersCancelAllApi(APIView):
    @extend_schema(
        summary="Cancel all your spot orders",
        tags=["spot"],
        request=CancelAllInputSerializer,
        operation_id="spot_orders_cancel_all",
        responses={200: CancelAllSerializer, **errors({404: "not_found: no spot market with that symbol."})},
        examples=[OpenApiExample("one market", request_only=True, value={"symbol": "BTC-USDT"})],
        description=CANCEL_ALL_DESCRIPTION,
    )
    def post(self, request):
        fields = validated(CancelAllInputSerializer, request)
        return Response(cancel_all_answer(request.user, fields.get("symbol")))


class SpotOrderApi(APIView):
    @extend_schema(
        summary="One spot order, with its fills",
        tags=["spot"],
        responses={200: OrderDetailSerializer},
        operation_id="spot_order_retrieve",
        description="One of your orders, with its fills (and a smart order's children).",
    )
    def get(self, request, order_id: int):
        order = selectors.spot_order_get(user=request.user, order_id=order_id)
        fills = selectors.spot_order_fills(order=order)
        if order.route == "smart":
            children = selectors.smart_order_children(parent=order, order_dict=order_dict)
            return Response(order_dict(order, fills=fills, children=children))
        return Response(order_dict(order, fills=fills))

    @extend_schema(
        summary="Cancel a spot order",
        tags=["spot"],
        request=None,
        operation_id="spot_order_cancel",
        responses={200: OrderSerializer, **errors({409: "order_not_open: already final."})},
        description="Cancel the order's open remainder; its hold is released.",
    )
    def delete(self, request, order_id: int):
        selectors.spot_order_get(user=request.user, order_id=order_id)
        order = spot_services.spot_order_cancel(user=request.user, order_id=order_id)
        return Response(order_dict(order))

    @extend_schema(
        summary="Amend a spot order",
        tags=["spot"],
        request=AmendInputSerializer,
        operation_id="spot_order_amend",
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                required=False,
                description="repeating it returns the first request's outcome",
            )
        ],
        responses={
            200: OpenApiResponse(AmendedOrderSerializer, description="applied: the order as it is now"),
            202: OpenApiResponse(
                AmendedOrderSerializer, description="the engine has not decided yet (`amend.status` pending)"
            ),
            **errors(
                {
                    400: "validation_error (`fields` names the field; the order's type does not have that field), "
                    "min_notional, max_order_size, price_out_of_band.",
                    404: "not_found: not one of your orders.",
                    409: "order_not_open (filled, cancelled or being cancelled), amend_pending (an earlier amend is "
                    "still waiting), amend_not_allowed (market and smart orders), amend_rejected (the engine refused "
                    "it: the message says why; the order is as it was), insufficient_funds, idempotency_conflict.",
                }
            ),
        },
        examples=[OpenApiExample("new price", request_only=True, value={"price": "64000", "quantity": "0.02"})],
        description="Change an open order's price and/or total quantity (filled part included). A smaller quantity "
        "at the same price keeps the order's place in the queue; a new price or a larger quantity re-queues it, and "
        "a new price that crosses trades at once. The hold grows or shrinks with the order (a buy holds price x "
        "remaining quantity, a sell its remaining quantity); a change the funds do not cover is refused and nothing "
        "changes. Waits briefly for the engine.",
    )
    def patch(self, request, order_id: int):
        selectors.spot_order_get(user=request.user, order_id=order_id)
        fields = validated(AmendInputSerializer, request)
        amend, replayed = spot_services.spot_order_amend(
            user=request.user,
            order_id=order_id,
            price=fields.get("price"),
            quantity=fields.get("quantity"),
            idempotency_key=request.headers.get("Idempotency-Key", "")[:64],
        )
        if amend.status == AmendStatus.REJECTED:
            code = "order_not_open" if amend.reason == "order_not_open" else "amend_rejected"
            raise Conflict(
                AMEND_REFUSALS.get(amend.reason, f"The engine refused the change ({amend.reason}).")
                + " The order is as it was.",
                code=code,
            )
        data = order_dict(amend.order)
        data["amend"] = AmendSerializer(amend).data
        response = Response(data, status=status.HTTP_200_OK if amend.status == AmendStatus.APPLIED else 202)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


@extend_schema_serializer(component_name="PaginatedSpotFillList")
class FillPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="fills in all pages")
    next = serializers.URLField(allow_null=True, help_text="the next page, or null")
    previous = serializers.URLField(allow_null=True, help_text="the previous page, or null")
    results = FillSerializer(many=True)


class FillsApi(APIView):
    pagination_class = PageNumberPagination

    class QuerySerializer(serializers.Serializer):
        limit = IntParam(default=100, low=1, high=500, help_text="fills per page (with array=1: how many)")
        symbol = TextParam()
        array = FlagParam(help_text="answer a bare array of the newest `limit` fills, as before pagination")

    @extend_schema(
        summary="Your spot fills",
        tags=["spot"],
        responses={
            200: PolymorphicProxySerializer(
                component_name="SpotFillsAnswer",
                serializers=[FillPageSerializer, FillSerializer(many=True)],
                resource_type_field_name=None,
                many=False,
            ),
            **errors({404: "not_found: a page past the last one."}),
        },
        parameters=[QuerySerializer, OpenApiParameter("page", int, description="page number (from 1)")],
        operation_id="spot_fills_list",
        description="Your fills (execution reports), newest first, paginated (`page`, `limit` per page). "
        "`array=1` answers the bare array of the newest `limit` fills that older clients read.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        if query["array"]:
            fills = selectors.spot_fills_for(user=request.user, symbol=query["symbol"], limit=query["limit"])
            return Response(FillSerializer(fills, many=True).data)
        paginator = self.pagination_class()
        paginator.page_size = query["limit"]
        trades = selectors.spot_fill_trades(user=request.user, symbol=query["symbol"])
        page = paginator.paginate_queryset(trades, request, view=self)
        fills = selectors.spot_fills_page(user=request.user, trades=page)
        return paginator.get_paginated_response(FillSerializer(fills, many=True).data)
