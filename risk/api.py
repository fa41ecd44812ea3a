"""Risk API (API.md "Risk"): a trader's limits and usage; staff's trading states."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import validated
from trading.schema import DecimalString, UtcDateTime, errors

from . import core, selectors, services


@extend_schema_serializer(component_name="RiskLimitLine")
class LimitLineSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="the limit's name, as a risk_limit refusal names it in fields.limit")
    scope = serializers.CharField(help_text='the symbol, underlying or asset it is set for, or "account"')
    limit = DecimalString()
    used = DecimalString(allow_null=True, help_text="null for a limit on each order")
    used_percent = DecimalString(allow_null=True)
    unit = serializers.CharField()
    summary = serializers.CharField()


@extend_schema_serializer(component_name="RiskLimits")
class LimitsSerializer(serializers.Serializer):
    trading_state = serializers.ChoiceField(choices=core.STATES, help_text="the strictest of the platform's and yours")
    trading_state_reason = serializers.CharField()
    limits = LimitLineSerializer(many=True)


class RiskLimitsApi(APIView):
    @extend_schema(
        summary="Your limits and their usage",
        responses={200: LimitsSerializer},
        tags=["risk"],
        description="Every limit that can refuse your orders or withdrawals, with what you use of it now.",
    )
    def get(self, request):
        state, lines = selectors.limits_overview(user=request.user)
        body = {"trading_state": state.state, "trading_state_reason": state.reason, "limits": lines}
        return Response(LimitsSerializer(body).data)


@extend_schema_serializer(component_name="TradingStateChange")
class StateChangeSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=core.SCOPES)
    target = serializers.CharField()
    state = serializers.ChoiceField(choices=core.STATES)
    previous = serializers.ChoiceField(choices=core.STATES)
    reason = serializers.CharField()
    cancel_open_orders = serializers.BooleanField()
    cancelled_orders = serializers.IntegerField(help_text="open spot orders asked to cancel")
    set_at = UtcDateTime()


class OpsRiskStateApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema_serializer(component_name="TradingStateInput")
    class InputSerializer(serializers.Serializer):
        scope = serializers.ChoiceField(choices=core.SCOPES)
        target = serializers.CharField(
            required=False, allow_blank=True, max_length=254, help_text="a symbol or underlying; a user id or email"
        )
        state = serializers.ChoiceField(choices=core.STATES)
        reason = serializers.CharField(max_length=200)
        cancel_open_orders = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        summary="Set a trading state (staff)",
        request=InputSerializer,
        responses={200: StateChangeSerializer, **errors({404: "not_found: unknown symbol or user."})},
        examples=[
            OpenApiExample(
                "halt a market",
                request_only=True,
                value={"scope": "symbol", "target": "BTC-USDT", "state": "halted", "reason": "venue incident"},
            )
        ],
        tags=["operations"],
        description="The kill switch (halted: no new orders), reduce-only, or back to active, for the platform, a "
        "symbol or a user; in the audit trail. With cancel_open_orders, the open spot orders in scope are cancelled.",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        change = services.trading_state_set(actor=request.user, **data)
        return Response(StateChangeSerializer(change).data)
