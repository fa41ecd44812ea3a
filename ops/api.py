"""GET /api/v1/ops/health (staff): the monitor's checks and the last 24 h of incidents.
GET /api/v1/ops/analytics (staff): the live figures of the analytics dashboard."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import validated_query
from trading.schema import DecimalString, UtcDateTime

from . import selectors
from .dashboard import analytics_dashboard


@extend_schema_serializer(component_name="OpsCheck")
class CheckSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="database, redis, web:<url>, celery, beat, relay, engine:<symbol>, ...")
    status = serializers.ChoiceField(choices=["ok", "failing"])
    since = UtcDateTime(help_text="when the check entered this status")
    detail = serializers.JSONField(help_text="what the last probe found")


@extend_schema_serializer(component_name="OpsIncident")
class IncidentSerializer(serializers.Serializer):
    check = serializers.CharField(source="check_name")
    started_at = UtcDateTime()
    resolved_at = UtcDateTime(allow_null=True, help_text="null while it is open")


@extend_schema_serializer(component_name="OpsHealth")
class HealthSerializer(serializers.Serializer):
    checks = CheckSerializer(many=True)
    incidents = IncidentSerializer(many=True, help_text="the last 24 h and every open one, newest first")


class OpsHealthApi(APIView):
    permission_classes = [IsAdminUser]

    class QuerySerializer(serializers.Serializer):
        hours = serializers.IntegerField(
            required=False, default=24, min_value=1, max_value=24 * 30, help_text="incidents of the last N hours"
        )

    @extend_schema(
        summary="Platform health (staff)",
        parameters=[QuerySerializer],
        responses=HealthSerializer,
        tags=["operations"],
        description="The monitor's 5-second probes: each check's state, and the incidents of the last 24 hours.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        return Response(HealthSerializer(selectors.health_report(hours=query["hours"])).data)


@extend_schema_serializer(component_name="OpsAnalyticsMinute")
class MinuteSerializer(serializers.Serializer):
    minute = UtcDateTime(help_text="the minute's start")
    orders = serializers.IntegerField(help_text="spot orders entered by traders")
    trades = serializers.IntegerField()
    volume_quote = DecimalString(help_text="USDT traded")


@extend_schema_serializer(component_name="OpsAnalyticsVolume")
class VolumeSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    trades = serializers.IntegerField()
    volume_base = DecimalString()
    volume_quote = DecimalString()


@extend_schema_serializer(component_name="OpsAnalyticsVolatility")
class VolatilitySerializer(serializers.Serializer):
    underlying = serializers.CharField()
    symbol = serializers.CharField()
    vol_1h = DecimalString(allow_null=True, help_text="annualized %, from the last hour's 1-minute index closes")
    samples_1h = serializers.IntegerField()
    vol_24h = DecimalString(allow_null=True, help_text="annualized %, from the last day's 5-minute index closes")
    samples_24h = serializers.IntegerField()


@extend_schema_serializer(component_name="OpsAnalyticsSettlement")
class SettlementLagSerializer(serializers.Serializer):
    waiting = serializers.IntegerField(help_text="pending or running settlements")
    oldest_waiting_seconds = DecimalString(allow_null=True, help_text="age of the oldest waiting one's order")
    manual_review = serializers.IntegerField()
    settled_1h = serializers.IntegerField(help_text="settled in the last hour")
    lag_avg_seconds = DecimalString(allow_null=True, help_text="order to settled, average over the last hour")
    lag_max_seconds = DecimalString(allow_null=True)


@extend_schema_serializer(component_name="OpsAnalyticsAlerts")
class AlertsSerializer(serializers.Serializer):
    incidents_open = serializers.IntegerField(help_text="the monitor's open incidents")
    aml_cases_open = serializers.IntegerField(help_text="AML cases open or escalated")
    total = serializers.IntegerField()


@extend_schema_serializer(component_name="OpsAnalytics")
class AnalyticsSerializer(serializers.Serializer):
    time = UtcDateTime(source="now")
    per_minute = MinuteSerializer(many=True, help_text="the last 60 minutes and the current one, oldest first")
    volume_24h = VolumeSerializer(many=True)
    volatility = VolatilitySerializer(many=True)
    settlement = SettlementLagSerializer()
    alerts = AlertsSerializer()


class OpsAnalyticsApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Analytics dashboard figures (staff)",
        responses=AnalyticsSerializer,
        tags=["operations"],
        description="Spot orders and trades per minute over the last hour, each symbol's 24-hour volume, the "
        "index's realized volatility, settlement lag and open alerts. The counter's exposure is at "
        "GET /api/v1/ops/risk/exposure.",
    )
    def get(self, request):
        return Response(AnalyticsSerializer(analytics_dashboard()).data)


urlpatterns = [
    path("ops/health", OpsHealthApi.as_view(), name="ops_health"),
    path("ops/analytics", OpsAnalyticsApi.as_view(), name="ops_analytics"),
]
