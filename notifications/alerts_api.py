"""Price alerts API (API.md "Notifications and alerts"): create, list, delete."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import validated
from trading.schema import DecimalInput, DecimalString, UtcDateTime, errors

from . import alert_selectors, alert_services
from . import alerts as core
from .models import PriceAlertStatus


@extend_schema_serializer(component_name="PriceAlert")
class PriceAlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    symbol = serializers.CharField(help_text="a spot symbol (its last price) or index:BTC / index:ETH")
    condition = serializers.ChoiceField(choices=core.CONDITIONS)
    value = DecimalString(help_text="a price; for change_pct a move in percent (negative: a fall)")
    window = serializers.CharField(allow_null=True, source="window_or_none", help_text="change_pct: 5m, 1h or 24h")
    frequency = serializers.ChoiceField(choices=core.FREQUENCIES)
    status = serializers.ChoiceField(choices=[PriceAlertStatus.ACTIVE, PriceAlertStatus.TRIGGERED])
    fire_count = serializers.IntegerField()
    last_fired_at = UtcDateTime(allow_null=True)
    last_fired_price = DecimalString(allow_null=True)
    created_at = UtcDateTime()


class PriceAlertListApi(ListAPIView):
    serializer_class = PriceAlertSerializer

    @extend_schema_serializer(component_name="PriceAlertInput")
    class InputSerializer(serializers.Serializer):
        symbol = serializers.CharField(max_length=40)
        condition = serializers.ChoiceField(choices=core.CONDITIONS)
        value = DecimalInput(help_text="price conditions: a multiple of the symbol's tick; change_pct: percent")
        window = serializers.ChoiceField(choices=list(core.WINDOWS), required=False, allow_null=True)
        frequency = serializers.ChoiceField(choices=core.FREQUENCIES)

    def get_queryset(self):
        return alert_selectors.price_alert_list(user=self.request.user)

    @extend_schema(summary="Your price alerts", tags=["alerts"], description="Active and triggered, newest first.")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a price alert",
        request=InputSerializer,
        responses={
            201: PriceAlertSerializer,
            **errors({409: "alert_limit_reached: you have as many active alerts as allowed."}),
        },
        tags=["alerts"],
        examples=[
            OpenApiExample(
                "above a price",
                request_only=True,
                value={"symbol": "BTC-USDT", "condition": "price_above", "value": "70000", "frequency": "once"},
            ),
            OpenApiExample(
                "a 5 % fall in an hour",
                request_only=True,
                value={
                    "symbol": "index:BTC",
                    "condition": "change_pct",
                    "value": "-5",
                    "window": "1h",
                    "frequency": "every_time",
                },
            ),
        ],
        description=(
            "Above or below a price, or a move in percent over 5m, 1h or 24h, on a spot symbol's last price "
            "or an index. once fires once and becomes triggered; every_time fires again after a cooldown; "
            "once_per_minute at most once a minute."
        ),
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        alert = alert_services.price_alert_create(user=request.user, **data)
        return Response(PriceAlertSerializer(alert).data, status=status.HTTP_201_CREATED)


class PriceAlertDetailApi(APIView):
    @extend_schema(summary="Delete a price alert", responses={204: None}, tags=["alerts"])
    def delete(self, request, alert_id: int):
        alert_services.price_alert_delete(user=request.user, alert_id=alert_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
