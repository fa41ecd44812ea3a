"""Portfolio API: performance, statements and transaction exports."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import ChoiceParam, validated_query
from trading.schema import DecimalString, UtcDateTime

from . import snapshots
from .performance import RATE_PLACES as RATE

USDT = "USDT"

# --- GET /portfolio/performance ----------------------------------------------------------------------


@extend_schema_serializer(component_name="PortfolioCurvePoint")
class CurvePointSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="the UTC day this value closed (today for the live value)")
    at = UtcDateTime(help_text="00:00 UTC after that day; now for the live value")
    value_usdt = DecimalString(asset=USDT)
    net_flows_usdt = DecimalString(
        asset=USDT, help_text="deposits - withdrawals since the previous point, valued when they moved"
    )
    live = serializers.BooleanField(help_text="the value now, at live prices (the last point)")


@extend_schema_serializer(component_name="PortfolioPerformance")
class PerformanceSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=list(snapshots.PERIODS))
    start = UtcDateTime(help_text="the first point: where the period's returns start")
    end = UtcDateTime()
    points = CurvePointSerializer(many=True)
    twr = DecimalString(
        step=RATE,
        allow_null=True,
        help_text="time-weighted return over the period, a fraction (0.05 = 5 %); flows excluded",
    )
    mwr = DecimalString(
        step=RATE,
        allow_null=True,
        help_text="money-weighted return over the period (the IRR of your flows), a fraction",
    )
    twr_annualized = DecimalString(step=RATE, allow_null=True, help_text="periods of a year or more only")
    mwr_annualized = DecimalString(step=RATE, allow_null=True, help_text="periods of a year or more only")
    stale = serializers.BooleanField(help_text="the live value uses a price that is not live")


class PortfolioPerformanceApi(APIView):
    class QuerySerializer(serializers.Serializer):
        period = ChoiceParam(
            list(snapshots.PERIODS),
            default="30d",
            message="Unknown period {value!r}.",
            hint="One of {choices}.",
            help_text="7d, 30d, 90d, 1y or all; 30d when absent",
        )

    @extend_schema(
        summary="Your equity curve and returns",
        tags=["portfolio"],
        parameters=[QuerySerializer],
        responses={200: PerformanceSerializer},
        description="Your portfolio's value at each UTC close (the daily snapshots) and now, with the deposits "
        "minus withdrawals between points; the time-weighted return (each day's growth chained, flows "
        "excluded) and the money-weighted return (the IRR of your flows). validation_error for an unknown "
        "period.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        result = snapshots.performance_of(user=request.user, period=query["period"])
        return Response(PerformanceSerializer(result).data)


urlpatterns = [
    path("portfolio/performance", PortfolioPerformanceApi.as_view(), name="portfolio_performance"),
]
