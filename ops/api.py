"""GET /api/v1/ops/health (staff): the monitor's checks and the last 24 h of incidents."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import validated_query
from trading.schema import UtcDateTime

from . import selectors


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


urlpatterns = [path("ops/health", OpsHealthApi.as_view(), name="ops_health")]
