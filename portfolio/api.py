"""Portfolio API (API.md "Portfolio"): the valuation, open lots and realized PnL."""

from __future__ import annotations

from decimal import Decimal

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import ChoiceParam, TextParam, TimeParam, validated_query
from trading.schema import DecimalString, UtcDateTime

from . import core, selectors

USDT = "USDT"
METHOD_HELP = "fifo (the oldest lots are sold first) or average (one pooled cost); fifo when absent"


def _method():
    return ChoiceParam(
        core.METHODS,
        default=core.FIFO,
        case_insensitive=True,
        message="Unknown method {value!r}.",
        hint="fifo or average",
        help_text=METHOD_HELP,
    )


# --- GET /portfolio ----------------------------------------------------------------------------------


@extend_schema_serializer(component_name="PortfolioAsset")
class AssetSerializer(serializers.Serializer):
    asset = serializers.CharField()
    quantity = DecimalString(asset_source="asset", help_text="the ledger balance: available + held")
    available = DecimalString(asset_source="asset")
    held = DecimalString(asset_source="asset", help_text="reserved by open orders and withdrawals")
    price_usdt = DecimalString(allow_null=True, help_text="null only when the asset has never had a price")
    price_at = UtcDateTime(allow_null=True)
    price_source = serializers.ChoiceField(choices=["unit", "last_trade", "index", "none"])
    value_usdt = DecimalString(asset=USDT, allow_null=True, help_text="quantity x price")
    weight = DecimalString(allow_null=True, help_text="value / total_usdt")
    cost_basis_usdt = DecimalString(asset=USDT, help_text="what the open lots cost, fees included")
    unrealized_pnl_usdt = DecimalString(asset=USDT, allow_null=True, help_text="value - cost basis")
    realized_pnl_usdt = DecimalString(asset=USDT, help_text="every disposal so far: proceeds - cost")
    stale = serializers.BooleanField(help_text="the price is the last known one, not live")


@extend_schema_serializer(component_name="PortfolioOptionPosition")
class OptionPositionSerializer(serializers.Serializer):
    series = serializers.CharField()
    underlying = serializers.CharField()
    option_type = serializers.ChoiceField(choices=["C", "P"])
    strike = DecimalString()
    expiry = UtcDateTime()
    contracts = DecimalString(step=Decimal("0.01"))
    mark_price_usdt = DecimalString(step=Decimal("0.01"), allow_null=True)
    value_usdt = DecimalString(asset=USDT, allow_null=True)
    cost_usdt = DecimalString(asset=USDT)
    unrealized_pnl_usdt = DecimalString(asset=USDT, allow_null=True)
    realized_pnl_usdt = DecimalString(asset=USDT)
    session_pnl_usdt = DecimalString(asset=USDT, allow_null=True, help_text="since the last 08:00 UTC")
    stale = serializers.BooleanField()


@extend_schema_serializer(component_name="PortfolioOptions")
class OptionsSerializer(serializers.Serializer):
    value_usdt = DecimalString(asset=USDT, help_text="the open positions at mark")
    weight = DecimalString(allow_null=True)
    unrealized_pnl_usdt = DecimalString(asset=USDT)
    realized_pnl_usdt = DecimalString(asset=USDT, help_text="closes and expiries of every position so far")
    session_start = UtcDateTime(help_text="the last 08:00 UTC")
    session_pnl_usdt = DecimalString(asset=USDT)
    stale = serializers.BooleanField()
    positions = OptionPositionSerializer(many=True, help_text="open now, or traded this session")


@extend_schema_serializer(component_name="Portfolio")
class ValuationSerializer(serializers.Serializer):
    valued_at = UtcDateTime()
    method = serializers.ChoiceField(choices=core.METHODS)
    total_usdt = DecimalString(asset=USDT, help_text="the assets' values + the options at mark")
    pnl_today_usdt = DecimalString(
        asset=USDT, help_text="total now - value at 00:00 UTC - deposits net of withdrawals since"
    )
    day_start = UtcDateTime()
    value_at_day_start_usdt = DecimalString(asset=USDT)
    net_flows_today_usdt = DecimalString(asset=USDT, help_text="deposits - withdrawals since 00:00 UTC, valued then")
    net_invested_usdt = DecimalString(asset=USDT, help_text="every deposit - every withdrawal, valued when it moved")
    realized_pnl_usdt = DecimalString(asset=USDT)
    unrealized_pnl_usdt = DecimalString(asset=USDT)
    stale = serializers.BooleanField(help_text="some price is not live")
    assets = AssetSerializer(many=True)
    options = OptionsSerializer()


class PortfolioApi(APIView):
    class QuerySerializer(serializers.Serializer):
        method = _method()

    @extend_schema(
        summary="Your portfolio, valued now",
        tags=["portfolio"],
        parameters=[QuerySerializer],
        responses={200: ValuationSerializer},
        description="Every asset's ledger balance at its live price (USDT at 1), its cost basis and PnL by the "
        "method, option positions at mark, and today's PnL. total_usdt is the sum of the asset values and the "
        "option value; realized + unrealized = total - net invested.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        return Response(ValuationSerializer(selectors.portfolio_of(user=request.user, method=query["method"])).data)


# --- GET /portfolio/lots ----------------------------------------------------------------------------------


@extend_schema_serializer(component_name="PortfolioLot")
class LotSerializer(serializers.Serializer):
    acquired_at = UtcDateTime(allow_null=True)
    quantity = DecimalString()
    cost_usdt = DecimalString(asset=USDT, help_text="fees included")
    source = serializers.CharField(help_text="book, smart, rfq, wallet (a deposit), option; average: one pooled lot")


@extend_schema_serializer(component_name="PortfolioLots")
class LotsSerializer(serializers.Serializer):
    asset = serializers.CharField()
    method = serializers.ChoiceField(choices=core.METHODS)
    quantity = DecimalString()
    cost_usdt = DecimalString(asset=USDT)
    lots = LotSerializer(many=True)


class PortfolioLotsApi(APIView):
    class QuerySerializer(serializers.Serializer):
        asset = TextParam(help_text="USDT, BTC, ETH or an option series (BTC-20261225-100000-C)")
        method = _method()

    @extend_schema(
        summary="Your open lots of an asset",
        tags=["portfolio"],
        parameters=[QuerySerializer],
        responses={200: LotsSerializer},
        description="What is left of each acquisition (fifo), or the one pooled lot at the average cost, with "
        "what it cost, fees included. unknown_asset for an asset or series that does not exist.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        lots = selectors.lots_of(user=request.user, asset=query["asset"], method=query["method"])
        return Response(LotsSerializer(lots).data)


# --- GET /portfolio/pnl ----------------------------------------------------------------------------------


@extend_schema_serializer(component_name="PortfolioDisposal")
class DisposalSerializer(serializers.Serializer):
    at = UtcDateTime()
    asset = serializers.CharField()
    kind = serializers.CharField(help_text="sell, withdrawal, fee, option_close, option_exercise, option_expiry, ...")
    quantity = DecimalString()
    proceeds_usdt = DecimalString(asset=USDT, help_text="fees taken off")
    cost_usdt = DecimalString(asset=USDT, help_text="the lots it used, fees included")
    pnl_usdt = DecimalString(asset=USDT)
    reference = serializers.CharField()


@extend_schema_serializer(component_name="PortfolioPnl")
class PnlSerializer(serializers.Serializer):
    start = UtcDateTime()
    end = UtcDateTime()
    method = serializers.ChoiceField(choices=core.METHODS)
    total_usdt = DecimalString(asset=USDT)
    by_asset = serializers.DictField(child=DecimalString(asset=USDT), help_text="asset or series: realized PnL")
    disposals = DisposalSerializer(many=True)


class PortfolioPnlApi(APIView):
    class QuerySerializer(serializers.Serializer):
        start = TimeParam(help_text="included; when absent, the start of the UTC year end falls in")
        end = TimeParam(help_text="excluded; now when absent")
        method = _method()

    @extend_schema(
        summary="Your realized PnL over a period",
        tags=["portfolio"],
        parameters=[QuerySerializer],
        responses={200: PnlSerializer},
        description="Every disposal in [start, end) (sales, withdrawals at their value then, fees, option closes "
        "and expiries) with its proceeds, the cost of the lots it used and its PnL; per asset and in total. "
        "validation_error when start is not before end or the period is longer than five years.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        report = selectors.pnl_of(user=request.user, start=query["start"], end=query["end"], method=query["method"])
        return Response(PnlSerializer(report).data)


urlpatterns = [
    path("portfolio", PortfolioApi.as_view(), name="portfolio"),
    path("portfolio/lots", PortfolioLotsApi.as_view(), name="portfolio_lots"),
    path("portfolio/pnl", PortfolioPnlApi.as_view(), name="portfolio_pnl"),
]
