"""Reports API (API.md "Compliance"): a trader's yearly trade report and tax report, their own
only (the signed-in trader's; nothing in the query names another)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio import core
from portfolio.reports_api import JsonUnlessDownload, download
from trading.api import ChoiceParam, TextParam, validated_query
from trading.schema import DecimalString, UtcDateTime

from . import reports

USDT = "USDT"


class YearParam(TextParam):
    """A calendar year up to this one; absent or blank is this one (read when asked, so a
    long-running server knows a new year has begun)."""

    def to_internal_value(self, data):
        return reports.parse_year(data)


def _year():
    return YearParam(help_text=f"a calendar year (UTC) from {reports.FIRST_YEAR} to this one; this one when absent")


def _format(choices, help_text: str):
    return ChoiceParam(
        choices,
        default="json",
        case_insensitive=True,
        message="Unknown format {value!r}.",
        help_text=help_text,
    )


# --- GET /reports/trades ---------------------------------------------------------------------------------


@extend_schema_serializer(component_name="ReportTrade")
class TradeSerializer(serializers.Serializer):
    time = UtcDateTime(source="at")
    instrument = serializers.CharField(help_text="the pair (BTC-USDT) or the option series")
    side = serializers.ChoiceField(choices=["buy", "sell"], help_text="yours")
    price = DecimalString(help_text="USDT per unit of the base, or per contract")
    quantity = DecimalString(help_text="of the base, or contracts")
    notional_usdt = DecimalString(source="notional", asset=USDT, help_text="what the trade exchanged in USDT")
    fee = DecimalString()
    fee_asset = serializers.CharField(help_text="the asset the fee was taken in (the one received)")
    order_id = serializers.CharField(
        help_text="the order it filled: the spot order, the smart order (a venue fill), the RFQ quote, the option order"
    )
    trade_id = serializers.CharField(help_text="spot:<id>, venue:<client order id>, rfq:<quote id> or option:<id>")
    source = serializers.ChoiceField(choices=["book", "smart", "rfq", "option"])
    venue = serializers.CharField(help_text="meridian (our book), an outside venue, meridian-rfq, meridian-options")


@extend_schema_serializer(component_name="TradeReport")
class TradeReportSerializer(serializers.Serializer):
    year = serializers.IntegerField()
    start = UtcDateTime()
    end = UtcDateTime(help_text="excluded")
    trades = TradeSerializer(many=True, help_text="oldest first")


class TradeReportApi(APIView):
    content_negotiation_class = JsonUnlessDownload

    class QuerySerializer(serializers.Serializer):
        year = _year()
        format = _format(reports.TRADE_FORMATS, "json (when absent) or csv (a download)")

    @extend_schema(
        summary="Your trades of a year",
        tags=["reports"],
        parameters=[QuerySerializer],
        responses={
            (200, "application/json"): TradeReportSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="format=csv: one row per trade"),
        },
        description="Every trade you made in the calendar year (UTC): your side of each fill on our book, each "
        "smart-routed fill at an outside venue, each RFQ block and each option order, with its price, "
        "quantity, notional, fee and the ids of the order and the trade. validation_error for a year before "
        f"{reports.FIRST_YEAR} or after this one, or an unknown format.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        report = reports.trade_report_of(user=request.user, year=query["year"])
        if query["format"] == "csv":
            return download(
                reports.render_trades_csv(report), content_type="text/csv", filename=f"trades-{report.year}.csv"
            )
        return Response(TradeReportSerializer(report).data)


# --- GET /reports/tax ----------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="TaxDisposal")
class TaxDisposalSerializer(serializers.Serializer):
    disposed_at = UtcDateTime()
    asset = serializers.CharField(help_text="BTC, ETH, USDT (a fee) or an option series")
    kind = serializers.CharField(help_text="sell, withdrawal, fee, option_close, option_exercise, option_expiry, ...")
    quantity = DecimalString()
    acquired = serializers.ListField(
        child=UtcDateTime(),
        help_text="when the lots it used were acquired, oldest first (average cost: when the position opened)",
    )
    proceeds_usdt = DecimalString(asset=USDT, help_text="fees taken off")
    cost_basis_usdt = DecimalString(source="cost_usdt", asset=USDT, help_text="the lots it used, fees included")
    gain_usdt = DecimalString(asset=USDT, help_text="proceeds - cost basis")
    reference = serializers.CharField()


@extend_schema_serializer(component_name="TaxTotal")
class TaxTotalSerializer(serializers.Serializer):
    asset = serializers.CharField()
    disposals = serializers.IntegerField()
    proceeds_usdt = DecimalString(asset=USDT)
    cost_basis_usdt = DecimalString(source="cost_usdt", asset=USDT)
    gain_usdt = DecimalString(asset=USDT)


@extend_schema_serializer(component_name="TaxReport")
class TaxReportSerializer(serializers.Serializer):
    year = serializers.IntegerField()
    method = serializers.ChoiceField(choices=core.METHODS)
    start = UtcDateTime()
    end = UtcDateTime(help_text="excluded")
    generated_at = UtcDateTime()
    disposals = TaxDisposalSerializer(many=True)
    by_asset = TaxTotalSerializer(many=True)
    proceeds_usdt = DecimalString(asset=USDT)
    cost_basis_usdt = DecimalString(source="cost_usdt", asset=USDT)
    gain_usdt = DecimalString(asset=USDT, help_text="the year's realized PnL: /portfolio/pnl's total_usdt")
    gains_usdt = DecimalString(asset=USDT, help_text="the disposals that gained")
    losses_usdt = DecimalString(asset=USDT, help_text="the disposals that lost (negative)")


class TaxReportApi(APIView):
    content_negotiation_class = JsonUnlessDownload

    class QuerySerializer(serializers.Serializer):
        year = _year()
        method = ChoiceParam(
            core.METHODS,
            default=core.FIFO,
            case_insensitive=True,
            message="Unknown method {value!r}.",
            hint="fifo or average",
            help_text="fifo (the oldest lots are sold first; when absent) or average (one pooled cost)",
        )
        format = _format(reports.TAX_FORMATS, "json (when absent), csv or pdf (downloads)")

    @extend_schema(
        summary="Your capital gains of a year",
        tags=["reports"],
        parameters=[QuerySerializer],
        responses={
            (200, "application/json"): TaxReportSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="format=csv: disposals, then totals"),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="format=pdf"),
        },
        description="Each disposal of the calendar year (UTC) — a sale, a withdrawal at its value then, a fee, an "
        "option closed, exercised or expired — with when its lots were acquired, its proceeds net of fees, its "
        "cost basis (fees included) and its gain; per asset and in total. The total is /portfolio/pnl's "
        "realized PnL for the same method and year. validation_error for a year before "
        f"{reports.FIRST_YEAR} or after this one, an unknown method or format.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        report = reports.tax_report_of(user=request.user, year=query["year"], method=query["method"])
        name = f"tax-{report.year}-{report.method}"
        if query["format"] == "csv":
            return download(reports.render_tax_csv(report), content_type="text/csv", filename=f"{name}.csv")
        if query["format"] == "pdf":
            return download(reports.render_tax_pdf(report), content_type="application/pdf", filename=f"{name}.pdf")
        return Response(TaxReportSerializer(report).data)


urlpatterns = [
    path("reports/trades", TradeReportApi.as_view(), name="reports_trades"),
    path("reports/tax", TaxReportApi.as_view(), name="reports_tax"),
]
