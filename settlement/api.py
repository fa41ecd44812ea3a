"""Staff API of the back office: GET /api/v1/ops/settlements."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser

from trading.errors import ValidationFailed
from trading.money import fmt
from trading.schema import DecimalStringMethod

from . import selectors
from .models import STEP_NAMES, State


@extend_schema_serializer(component_name="SettlementStepRecord")
class StepSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    name = serializers.SerializerMethodField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    error_code = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_name(self, obj) -> str:
        return STEP_NAMES[obj.step]


@extend_schema_serializer(component_name="SettlementRecord")
class SettlementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ref = serializers.CharField(help_text="option_order:<id> or option_exercise:<id>")
    order_id = serializers.SerializerMethodField()
    kind = serializers.CharField()
    underlying = serializers.CharField()
    usdt = DecimalStringMethod()
    underlying_qty = DecimalStringMethod()
    state = serializers.ChoiceField(choices=State.choices)
    current_step = serializers.SerializerMethodField()
    current_step_name = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error_code = serializers.CharField()
    last_error = serializers.CharField()
    client_order_id = serializers.CharField()
    venue_order_id = serializers.CharField()
    fill_price = serializers.DecimalField(max_digits=38, decimal_places=6, coerce_to_string=True, allow_null=True)
    slippage_bps = serializers.DecimalField(max_digits=12, decimal_places=4, coerce_to_string=True, allow_null=True)
    accepted_at = serializers.DateTimeField()
    settled_at = serializers.DateTimeField(allow_null=True)
    steps = StepSerializer(many=True)

    def get_order_id(self, obj) -> str:
        return obj.ref.split(":", 1)[1] if obj.ref.startswith("option_order:") else ""

    def get_usdt(self, obj) -> str:
        return fmt("USDT", obj.usdt)

    def get_underlying_qty(self, obj) -> str:
        return fmt(obj.underlying, obj.underlying_qty)

    def get_current_step(self, obj) -> int | None:
        return obj.step if obj.step <= 4 else None


class OpsSettlementsApi(ListAPIView):
    serializer_class = SettlementSerializer
    permission_classes = [IsAdminUser]

    def get_queryset(self):
        state = self.request.query_params.get("state") or None
        if state and state not in State.values:
            raise ValidationFailed(f"state must be one of {', '.join(State.values)}.", fields={"state": ["Unknown state."]})
        return selectors.settlements_list(order_id=self.request.query_params.get("order_id") or None, state=state)

    @extend_schema(
        tags=["operations"],
        parameters=[
            OpenApiParameter("order_id", str, description="an option order id, or a full ref such as option_exercise:7"),
            OpenApiParameter("state", str, enum=State.values),
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
