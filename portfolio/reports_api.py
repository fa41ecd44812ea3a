"""Portfolio API: performance, statements and transaction exports."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import ChoiceParam, TextParam, validated_query
from trading.schema import DecimalString, UtcDateTime

from . import core, exports, snapshots, statements
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


# --- downloads -------------------------------------------------------------------------------------------------


class JsonUnlessDownload(DefaultContentNegotiation):
    """``?format=`` picks a download here (csv, pdf, koinly, ...), which the view writes
    itself; everything the framework renders (the JSON answer, an error) is JSON. DRF's own
    reading of ``format`` would answer an unknown one with a bare 404."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def download(body, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _stamp(value) -> str:
    return value.strftime("%Y%m%dT%H%M%SZ")


def _moment(*, field: str):
    return TextParam(
        parse=lambda raw: statements.parse_moment(raw, field=field),
        help_text="a day (2026-11-01: its 00:00 UTC) or an ISO 8601 time",
    )


# --- GET /statements ------------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="StatementBalance")
class StatementBalanceSerializer(serializers.Serializer):
    asset = serializers.CharField()
    opening = DecimalString(asset_source="asset", help_text="the ledger balance at start (holds included)")
    closing = DecimalString(asset_source="asset", help_text="the ledger balance at end")
    change = DecimalString(asset_source="asset")
    closing_price_usdt = DecimalString(allow_null=True)
    closing_value_usdt = DecimalString(asset=USDT, allow_null=True)


@extend_schema_serializer(component_name="StatementMovement")
class StatementMovementSerializer(serializers.Serializer):
    asset = serializers.CharField()
    deposits = DecimalString(asset_source="asset")
    withdrawals = DecimalString(asset_source="asset")
    withdrawal_fees = DecimalString(asset_source="asset")
    trades_in = DecimalString(asset_source="asset", help_text="received in trades (before their fees)")
    trades_out = DecimalString(asset_source="asset", help_text="paid in trades")
    trading_fees = DecimalString(asset_source="asset")
    options_in = DecimalString(asset_source="asset", help_text="option closes and exercise payouts")
    options_out = DecimalString(asset_source="asset", help_text="option premiums paid")
    other = DecimalString(asset_source="asset", help_text="what the rows above do not explain (zero)")


@extend_schema_serializer(component_name="StatementTransaction")
class TransactionSerializer(serializers.Serializer):
    at = UtcDateTime()
    kind = serializers.CharField(
        help_text="buy, sell, deposit, withdrawal, option_buy, option_sell, option_exercise, option_expiry"
    )
    source = serializers.CharField(help_text="book, smart, rfq, wallet, option")
    symbol = serializers.CharField()
    sent_amount = DecimalString(allow_null=True)
    sent_asset = serializers.CharField()
    received_amount = DecimalString(allow_null=True)
    received_asset = serializers.CharField()
    fee_amount = DecimalString(allow_null=True)
    fee_asset = serializers.CharField()
    price_usdt = DecimalString(allow_null=True)
    reference = serializers.CharField()


@extend_schema_serializer(component_name="StatementFee")
class StatementFeeSerializer(serializers.Serializer):
    asset = serializers.CharField()
    trading = DecimalString(asset_source="asset")
    withdrawal = DecimalString(asset_source="asset")
    total = DecimalString(asset_source="asset")


@extend_schema_serializer(component_name="Statement")
class StatementSerializer(serializers.Serializer):
    email = serializers.CharField()
    start = UtcDateTime()
    end = UtcDateTime(help_text="excluded; at most now")
    generated_at = UtcDateTime()
    method = serializers.ChoiceField(choices=core.METHODS)
    balances = StatementBalanceSerializer(many=True)
    movements = StatementMovementSerializer(many=True, help_text="per asset: opening + these = closing")
    trades = TransactionSerializer(many=True)
    transfers = TransactionSerializer(many=True, help_text="deposits and withdrawals")
    options = TransactionSerializer(many=True)
    fees = StatementFeeSerializer(many=True)
    closing_value_usdt = DecimalString(asset=USDT, help_text="the closing balances at the prices at end")
    realized_pnl_usdt = DecimalString(asset=USDT)
    realized_by_asset = serializers.DictField(child=DecimalString(asset=USDT))
    unrealized_pnl_usdt = DecimalString(asset=USDT, help_text="at end")
    unrealized_by_asset = serializers.DictField(child=DecimalString(asset=USDT))
    stale = serializers.BooleanField(help_text="a price at end was missing or not live")


class StatementApi(APIView):
    content_negotiation_class = JsonUnlessDownload

    class QuerySerializer(serializers.Serializer):
        start = _moment(field="start")
        end = _moment(field="end")
        format = ChoiceParam(
            statements.FORMATS,
            default="json",
            case_insensitive=True,
            message="Unknown format {value!r}.",
            help_text="json (when absent), csv or pdf",
        )
        method = ChoiceParam(
            core.METHODS, default=core.FIFO, case_insensitive=True, message="Unknown method {value!r}."
        )

    @extend_schema(
        summary="Your account statement for a period",
        tags=["portfolio"],
        parameters=[QuerySerializer],
        responses={
            (200, "application/json"): StatementSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="format=csv: one file, a section a block"),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="format=pdf"),
        },
        description="Opening and closing balances of [start, end) (the ledger's), what moved them (deposits, "
        "withdrawals, trades, fees, option activity), realized PnL of the period and unrealized PnL at its end. "
        "start defaults to the first day of end's month, end to now. validation_error for reversed dates, a "
        "period over five years, or an unknown format.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        statement = statements.statement_of(
            user=request.user, start=query["start"], end=query["end"], method=query["method"]
        )
        name = f"statement-{_stamp(statement.start)}-{_stamp(statement.end)}"
        if query["format"] == "csv":
            return download(statements.render_csv(statement), content_type="text/csv", filename=f"{name}.csv")
        if query["format"] == "pdf":
            return download(statements.render_pdf(statement), content_type="application/pdf", filename=f"{name}.pdf")
        return Response(StatementSerializer(statement).data)


# --- GET /exports/transactions ----------------------------------------------------------------------------------


class TransactionsExportApi(APIView):
    content_negotiation_class = JsonUnlessDownload

    class QuerySerializer(serializers.Serializer):
        start = _moment(field="start")
        end = _moment(field="end")
        format = ChoiceParam(
            exports.FORMATS,
            default="csv",
            case_insensitive=True,
            message="Unknown format {value!r}.",
            help_text="csv (ours; when absent), koinly (Koinly's universal import) or cointracker",
        )

    @extend_schema(
        summary="Your transaction history as a CSV file",
        tags=["portfolio"],
        parameters=[QuerySerializer],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="one row per transaction")},
        description="Every trade (with its fee), deposit, withdrawal (with its fee) and option order, exercise and "
        "expiry in [start, end), oldest first. format=koinly uses Koinly's universal import headers and "
        "format=cointracker CoinTracker's, exactly; amounts sent and received are gross and the fee comes on top. "
        "start defaults to the first day of end's month, end to now. validation_error for reversed dates, a "
        "period over five years, or an unknown format.",
    )
    def get(self, request):
        query = validated_query(self.QuerySerializer, request)
        start, end = statements.check_period(query["start"], query["end"])
        rows = exports.transactions_of(user=request.user, start=start, end=end)
        name = f"transactions-{_stamp(start)}-{_stamp(end)}-{query['format']}.csv"
        return download(exports.render(rows, query["format"]), content_type="text/csv", filename=name)


urlpatterns = [
    path("portfolio/performance", PortfolioPerformanceApi.as_view(), name="portfolio_performance"),
    path("statements", StatementApi.as_view(), name="statements"),
    path("exports/transactions", TransactionsExportApi.as_view(), name="exports_transactions"),
]
