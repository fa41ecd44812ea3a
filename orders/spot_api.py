"""Spot order entry and execution reports (API.md "Spot orders").

POST returns as soon as the order and its hold are committed (status ``new``); the engine
runner takes it within milliseconds, and the client follows it on ``/ws/user/`` or with
GET. ``?wait=1`` on POST waits up to ``SPOT_ORDER_WAIT_SECONDS`` for the engine's first
verdict. DELETE waits for the cancel to be carried out (or that long).
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .models import SpotOrder
from .services import spot as spot_services

ORDER_ERRORS = (
    "Errors: validation_error, min_notional, max_order_size, price_out_of_band (400), not_found (404: unknown "
    "symbol), insufficient_funds, max_open_orders, idempotency_conflict (409), index_stale (503: market orders "
    "need a live index)."
)


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


_ORDER_FIELDS = {
    "id": serializers.IntegerField(), "client_order_id": serializers.CharField(), "symbol": serializers.CharField(),
    "side": serializers.CharField(), "type": serializers.CharField(), "time_in_force": serializers.CharField(),
    "status": serializers.CharField(help_text="new, open, partially_filled, filled, cancelled, rejected, triggered_pending"),
    "quantity": serializers.CharField(allow_null=True), "price": serializers.CharField(allow_null=True),
    "filled_quantity": serializers.CharField(), "average_price": serializers.CharField(allow_null=True),
    "fees_paid": serializers.CharField(), "reject_reason": serializers.CharField(allow_null=True),
}
_ORDER_SCHEMA = inline_serializer("SpotOrder", fields=_ORDER_FIELDS)

_ORDER_INPUT = inline_serializer("SpotOrderInput", fields={
    "symbol": serializers.CharField(), "side": serializers.ChoiceField(["buy", "sell"]),
    "type": serializers.ChoiceField(["market", "limit", "stop_market", "stop_limit", "trailing_stop"]),
    "time_in_force": serializers.ChoiceField(["GTC", "IOC", "FOK"], required=False),
    "post_only": serializers.BooleanField(required=False),
    "quantity": serializers.CharField(required=False), "quote_quantity": serializers.CharField(required=False),
    "price": serializers.CharField(required=False), "stop_price": serializers.CharField(required=False),
    "trail_amount": serializers.CharField(required=False), "trail_percent": serializers.CharField(required=False),
    "display_quantity": serializers.CharField(required=False),
    "route": serializers.ChoiceField(["book", "smart"], required=False),
    "client_order_id": serializers.CharField(required=False),
})


_FILL_SCHEMA = inline_serializer("SpotFill", many=True, fields={
    "trade_id": serializers.IntegerField(), "order_id": serializers.IntegerField(), "symbol": serializers.CharField(),
    "side": serializers.CharField(), "price": serializers.CharField(), "quantity": serializers.CharField(),
    "quote_amount": serializers.CharField(), "fee": serializers.CharField(), "fee_asset": serializers.CharField(),
    "liquidity": serializers.CharField(help_text="maker or taker"), "time": serializers.DateTimeField(),
})


class SpotOrdersApi(APIView):
    @extend_schema(
        tags=["spot"], parameters=[OpenApiParameter("status", str, description="open, closed, all (default) or a status"),
                                   OpenApiParameter("symbol", str)],
        responses={200: inline_serializer("SpotOrderList", many=True, fields=_ORDER_FIELDS)}, operation_id="spot_orders_list",
        description="Your spot orders, newest first, paginated.",
    )
    def get(self, request):
        from rest_framework.pagination import PageNumberPagination

        orders = selectors.spot_orders_for(user=request.user, status=request.query_params.get("status", "all"),
                                           symbol=request.query_params.get("symbol"))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response([order_dict(order) for order in page])

    @extend_schema(
        tags=["spot"], request=_ORDER_INPUT, responses={201: _ORDER_SCHEMA}, operation_id="spot_orders_create",
        parameters=[OpenApiParameter("wait", bool, description="wait briefly for the engine's verdict")],
        description="Enter a spot order; the funds it may cost are held at once. A replayed client_order_id returns "
        "the original order (header `Idempotent-Replayed: true`). " + ORDER_ERRORS,
    )
    def post(self, request):
        order, replayed = spot_services.spot_order_place(user=request.user, data=request.data)
        if request.query_params.get("wait") in ("1", "true") and not replayed:
            order = spot_services.spot_order_wait(order_id=order.pk)
        response = Response(order_dict(order), status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class SpotOrderApi(APIView):
    @extend_schema(tags=["spot"], responses={200: _ORDER_SCHEMA}, operation_id="spot_order_retrieve",
                   description="One of your orders, with its fills.")
    def get(self, request, order_id: int):
        order = selectors.spot_order_get(user=request.user, order_id=order_id)
        if order.route == "smart":
            from .services.routing import smart_order_refresh, smart_order_children

            order = smart_order_refresh(parent_id=order.pk)  # closes it if its children are done
            data = order_dict(order, fills=selectors.spot_order_fills(order=order))
            data["children"] = smart_order_children(parent=order, order_dict=order_dict)
            return Response(data)
        return Response(order_dict(order, fills=selectors.spot_order_fills(order=order)))

    @extend_schema(tags=["spot"], responses={200: _ORDER_SCHEMA}, operation_id="spot_order_cancel",
                   description="Cancel the order's open remainder; its hold is released. Errors: not_found (404), "
                   "order_not_open (409).")
    def delete(self, request, order_id: int):
        selectors.spot_order_get(user=request.user, order_id=order_id)
        order = spot_services.spot_order_cancel(user=request.user, order_id=order_id)
        return Response(order_dict(order))


class FillsApi(APIView):
    @extend_schema(tags=["spot"], parameters=[OpenApiParameter("symbol", str), OpenApiParameter("limit", int)],
                   responses={200: _FILL_SCHEMA}, operation_id="spot_fills_list",
                   description="Your fills (execution reports), newest first.")
    def get(self, request):
        try:
            limit = max(1, min(500, int(request.query_params.get("limit", 100))))
        except ValueError:
            limit = 100
        fills = selectors.spot_fills_for(user=request.user, symbol=request.query_params.get("symbol"), limit=limit)
        return Response([fill_dict(fill) for fill in fills])
