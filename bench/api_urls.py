"""Bench-only URLconf for ``bench/api.py``: every platform route, plus the floor.

``POST /api/v1/bench/floor-orders`` is the least a DRF order endpoint can do: the same
authentication (JWT), permission, JSON parser and renderer and middleware as
``POST /api/v1/orders``, then one INSERT of a ``SpotOrder`` row taken from the request as
it is, and a small JSON answer. No validation, no instrument or index lookup, no user lock,
no open-order count, no hold (ledger), no NOTIFY. Its rows are ``rejected`` so that nothing
(an engine, the open-order limit) ever acts on them."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import SpotOrder, SpotStatus
from trading.urls import urlpatterns as platform_urlpatterns


class FloorOrdersApi(APIView):
    def post(self, request):
        data = request.data
        order = SpotOrder.objects.create(
            user=request.user,
            symbol=str(data.get("symbol", ""))[:20],
            side=str(data.get("side", ""))[:4],
            type=str(data.get("type", ""))[:16],
            quantity=data.get("quantity"),
            price=data.get("price"),
            hold_asset="USDT",
            hold_amount=0,
            status=SpotStatus.REJECTED,
            reject_reason="bench_floor",
        )
        return Response({"id": order.pk, "status": order.status}, status=201)


urlpatterns = [path("api/v1/bench/floor-orders", FloorOrdersApi.as_view()), *platform_urlpatterns]
