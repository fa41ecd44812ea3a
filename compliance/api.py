"""Compliance API (API.md "Compliance"): the AML case list for staff."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser

from trading.api import ChoiceParam, validated_query
from trading.schema import DecimalString, UtcDateTime

from . import selectors
from .models import AmlAlert, CaseStatus


class AmlCaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.EmailField(source="user.email", help_text="the trader's email")
    user_id = serializers.IntegerField()
    rule_codes = serializers.SerializerMethodField(help_text="the rules of the case's alerts")
    score = DecimalString()
    status = serializers.ChoiceField(choices=CaseStatus.choices)
    assignee = serializers.EmailField(source="assignee.email", allow_null=True, default=None)
    account_frozen = serializers.BooleanField()
    opened_at = UtcDateTime()
    closed_at = UtcDateTime(allow_null=True)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_rule_codes(self, case) -> list[str]:
        return sorted({alert.rule_code for alert in case.alerts.all()})


class OpsAmlCasesApi(ListAPIView):
    permission_classes = [IsAdminUser]
    serializer_class = AmlCaseSerializer

    class QuerySerializer(serializers.Serializer):
        status = ChoiceParam(
            CaseStatus.values,
            required=False,
            default=None,
            help_text="open, escalated, cleared or sar_filed; every case when absent",
        )

    def get_queryset(self):
        status = validated_query(self.QuerySerializer, self.request)["status"]
        return selectors.case_inbox(status=status).prefetch_related(
            Prefetch("alerts", queryset=AmlAlert.objects.only("pk", "case_id", "rule_code"))
        )

    @extend_schema(
        summary="AML cases (staff)",
        parameters=[QuerySerializer],
        tags=["operations"],
        description="The AML case inbox, highest score first; validation_error for an unknown status.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
