"""Staff API of the back office: GET /api/v1/ops/settlements."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser

from trading.api import ChoiceParam, TextParam, validated_query
from trading.schema import DecimalString, UtcDateTime

from . import selectors
from .models import STEP_NAMES, State


@extend_schema_serializer(component_name="SettlementStepRecord")
class StepSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    name = serializers.SerializerMethodField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    error_code = serializers.CharField()
    started_at = UtcDateTime()
    finished_at = UtcDateTime(allow_null=True)

    def get_name(self, obj) -> str:
        return STEP_NAMES[obj.step]


@extend_schema_serializer(component_name="SettlementRecord")
class SettlementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ref = serializers.CharField(help_text="option_order:<id> or option_exercise:<id>")
    order_id = serializers.SerializerMethodField()
    kind = serializers.CharField()
    underlying = serializers.CharField()
    usdt = DecimalString(asset="USDT")
    underlying_qty = DecimalString(asset_source="underlying")
    state = serializers.ChoiceField(choices=State.choices)
    current_step = serializers.SerializerMethodField()
    current_step_name = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error_code = serializers.CharField()
    last_error = serializers.CharField()
    client_order_id = serializers.CharField()
    venue_order_id = serializers.CharField()
    fill_price = DecimalString(step=Decimal("0.000001"), allow_null=True)
    slippage_bps = DecimalString(step=Decimal("0.0001"), allow_null=True)
    accepted_at = UtcDateTime()
    settled_at = UtcDateTime(allow_null=True)
    steps = StepSerializer(many=True)

    def get_order_id(self, obj) -> str:
        return obj.ref.split(":", 1)[1] if obj.ref.startswith("option_order:") else ""

    def get_current_step(self, obj) -> int | None:
        return obj.step if obj.step <= 4 else None


class OpsSettlementsApi(ListAPIView):
    serializer_class = SettlementSerializer
    permission_classes = [IsAdminUser]

    class QuerySerializer(serializers.Serializer):
        state = ChoiceParam(State.values, hint="Unknown state.")
        order_id = TextParam(help_text="an option order id, or a full ref such as option_exercise:7")

    def get_queryset(self):
        query = validated_query(self.QuerySerializer, self.request)
        return selectors.settlements_list(order_id=query["order_id"], state=query["state"])

    @extend_schema(summary="Settlement records (staff)", tags=["operations"], parameters=[QuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
