"""GET /api/v1/ops/risk/exposure (staff): the options counter's own book per underlying."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.schema import DecimalString, UtcDateTime

from . import exposure


@extend_schema_serializer(component_name="CounterExposureLimits")
class ExposureLimitsSerializer(serializers.Serializer):
    delta_soft = DecimalString(allow_null=True, help_text="|net delta| (underlying) past which buys' asks widen")
    delta_hard = DecimalString(allow_null=True, help_text="|net delta| no buy may take the counter past")
    vega_soft = DecimalString(allow_null=True, help_text="|net vega| (USDT per vol point) past which asks widen")
    vega_hard = DecimalString(allow_null=True, help_text="|net vega| no buy may take the counter past")


@extend_schema_serializer(component_name="CounterExposureUnderlying")
class UnderlyingExposureSerializer(serializers.Serializer):
    underlying = serializers.CharField()
    index_price = DecimalString(allow_null=True, help_text="the latest index print the greeks are priced at")
    index_stale = serializers.BooleanField(help_text="the print is older than INDEX_MAX_AGE_SECONDS")
    net_delta = DecimalString(help_text="the counter's (minus the customers') delta, in the underlying")
    net_gamma = DecimalString(help_text="per USDT of the index")
    net_vega = DecimalString(help_text="USDT per volatility point (0.01)")
    net_theta = DecimalString(help_text="USDT per calendar day")
    contracts_open = DecimalString(help_text="customer contracts open, all series")
    hedge_underlying = DecimalString(
        allow_null=True, help_text="what settlement bought at the venue less what it sold (null: not reported)"
    )
    venue_balance = DecimalString(
        allow_null=True, help_text="the settlement venue's balance of the underlying (null: it cannot report one)"
    )
    ledger_venue_balance = DecimalString(help_text="the ledger's VENUE_FUNDING accounts in the underlying")
    limits = ExposureLimitsSerializer()
    usage_percent = DecimalString(allow_null=True, help_text="the larger share of the delta and vega hard limits")


@extend_schema_serializer(component_name="CounterExposure")
class ExposureSerializer(serializers.Serializer):
    time = UtcDateTime()
    venue = serializers.CharField(help_text="the settlement venue (SETTLEMENT_VENUE)")
    venue_error = serializers.CharField(allow_null=True, help_text="why the venue reported no balances")
    venue_usdt = DecimalString(allow_null=True, help_text="the venue's USDT balance (null: not reported)")
    ledger_venue_usdt = DecimalString(help_text="the ledger's VENUE_FUNDING accounts in USDT")
    underlyings = UnderlyingExposureSerializer(many=True)


class OpsRiskExposureApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="The counter's exposure (staff)",
        responses={200: ExposureSerializer},
        tags=["risk"],
        description="Per underlying: the options counter's net delta, gamma, vega and theta (short every customer "
        "position), the contracts open, the hedge settlement holds, the settlement venue's balances against the "
        "ledger's, and the counter's soft and hard exposure limits with their usage. Null venue figures: the "
        "venue cannot report balances now (venue_error says why).",
    )
    def get(self, request):
        return Response(ExposureSerializer(exposure.exposure_report()).data)
