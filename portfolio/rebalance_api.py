"""Rebalancing API (API.md "Portfolio"): preview the orders that bring the portfolio back to
target weights, place them as one idempotent batch, the trader's saved targets, and the
Portfolio page's suggestion."""

from __future__ import annotations

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import validated
from trading.errors import NotFound
from trading.schema import DecimalInput, DecimalString, UtcDateTime, errors

from . import rebalance_selectors as selectors
from . import services
from .models import RebalanceStatus

USDT = "USDT"
TARGETS_HELP = (
    "{ASSET: weight} over USDT, BTC and ETH as decimal strings adding up to exactly 1; an asset left out has a "
    "target of 0"
)
TOLERANCE_HELP = "the largest drift left alone, 0 to 0.5 (0.02 = 2 points); the platform's default when absent"
BAD_TARGETS = errors(
    {
        400: "validation_error: fields.targets names the bad weight (unknown asset, negative, above 1, not a "
        "decimal string) or says they do not add up to 1; fields.tolerance a bad tolerance.",
        503: "index_stale: a price the plan needs is not live.",
    }
)


# --- shapes ------------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="RebalanceOrder")
class PlannedOrderSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    quantity = DecimalString(help_text="whole lots of the base")
    est_price = DecimalString(help_text="the best bid (sells) or ask (buys) now")
    est_notional = DecimalString(asset=USDT, help_text="quantity x est_price")
    quote_quantity = DecimalString(
        allow_null=True, help_text="buys: the USDT it spends (a market order by quote amount); null for sells"
    )
    est_fee = DecimalString(help_text="the taker fee, in fee_asset")
    fee_asset = serializers.CharField(help_text="what the order receives: USDT for a sell, the base for a buy")


@extend_schema_serializer(component_name="RebalancePreview")
class PreviewSerializer(serializers.Serializer):
    targets = serializers.DictField(child=DecimalString())
    tolerance = DecimalString()
    fee_rate = DecimalString(help_text="the taker fee each order pays")
    value_usdt = DecimalString(asset=USDT, help_text="the spot assets' value (options are not rebalanced)")
    drift_before = DecimalString(help_text="max |weight - target| now")
    drift_after = DecimalString(help_text="the same after the orders, at their estimated prices")
    within_tolerance = serializers.BooleanField(help_text="drift_after <= tolerance")
    weights_before = serializers.DictField(child=DecimalString())
    weights_after = serializers.DictField(child=DecimalString())
    orders = PlannedOrderSerializer(many=True, help_text="in the order they trade: sells first")


@extend_schema_serializer(component_name="RebalanceError")
class BatchErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.JSONField(), required=False)


@extend_schema_serializer(component_name="RebalanceSpotOrder")
class EnteredOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    filled_quantity = DecimalString()
    filled_quote = DecimalString()
    average_price = DecimalString(allow_null=True)
    fees_paid = DecimalString()
    cancel_reason = serializers.CharField(allow_null=True)


@extend_schema_serializer(component_name="RebalanceBatchOrder")
class BatchOrderSerializer(PlannedOrderSerializer):
    state = serializers.ChoiceField(
        choices=["pending", "placed", "refused", "skipped"],
        help_text="placed: entered (see order); refused: order entry said no (see error); skipped: not entered",
    )
    client_order_id = serializers.CharField(required=False, help_text="the spot order's, derived from the batch")
    error = BatchErrorSerializer(required=False, allow_null=True)
    order = EnteredOrderSerializer(allow_null=True, help_text="the spot order as it stands now")


@extend_schema_serializer(component_name="RebalanceBatch")
class BatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_id = serializers.CharField()
    status = serializers.ChoiceField(choices=RebalanceStatus.values)
    targets = serializers.DictField(child=DecimalString())
    tolerance = DecimalString()
    value_usdt = DecimalString(asset=USDT)
    drift_before = DecimalString(step=selectors.DRIFT_STEP)
    drift_after = DecimalString(step=selectors.DRIFT_STEP, help_text="expected, at the estimated prices")
    error = BatchErrorSerializer(allow_null=True, help_text="why the batch stopped short (status partial)")
    orders = BatchOrderSerializer(many=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


def batch_dict(batch) -> dict:
    data = BatchSerializer(batch).data
    data["orders"] = BatchOrderSerializer(selectors.batch_orders(batch), many=True).data
    return data


class TargetsInputSerializer(serializers.Serializer):
    targets = serializers.DictField(child=DecimalInput(), help_text=TARGETS_HELP)
    tolerance = DecimalInput(required=False, allow_null=True, help_text=TOLERANCE_HELP)


# --- views ---------------------------------------------------------------------------------------------


class RebalancePreviewApi(APIView):
    @extend_schema_serializer(component_name="RebalancePreviewInput")
    class InputSerializer(TargetsInputSerializer):
        pass

    @extend_schema(
        summary="Preview a rebalance",
        tags=["portfolio"],
        request=InputSerializer,
        responses={200: PreviewSerializer, **BAD_TARGETS},
        examples=[
            OpenApiExample(
                "half in BTC",
                request_only=True,
                value={"targets": {"BTC": "0.5", "ETH": "0.2", "USDT": "0.3"}, "tolerance": "0.02"},
            )
        ],
        description="The spot market orders that bring your spot assets back to the target weights (nothing when "
        "the drift is within the tolerance): whole lots, at least each pair's minimum value, within what is "
        "available, after the taker fee; sells first. Writes nothing.",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        targets, tolerance = selectors.targets_parse(data["targets"], data.get("tolerance"))
        preview = selectors.rebalance_preview(user=request.user, targets=targets, tolerance=tolerance)
        return Response(PreviewSerializer(preview).data)


class RebalanceApi(APIView):
    pagination_class = PageNumberPagination

    @extend_schema_serializer(component_name="RebalanceInput")
    class InputSerializer(TargetsInputSerializer):
        client_id = serializers.RegexField(
            r"^[A-Za-z0-9._:\-]{1,64}$", help_text="your id for this batch; replaying it returns the batch"
        )

    @extend_schema(
        summary="Rebalance: place the orders",
        tags=["portfolio"],
        request=InputSerializer,
        responses={
            201: BatchSerializer,
            200: OpenApiResponse(BatchSerializer, description="a replayed client_id: the batch, nothing new placed"),
            **errors(
                {
                    400: "validation_error (targets, tolerance, client_id), or a refusal of order entry "
                    "(min_notional, max_order_size, price_out_of_band).",
                    403: "trading_halted or reduce_only: a trading state stops an order of the plan; nothing placed.",
                    409: "idempotency_conflict: client_id used for other targets; insufficient_funds, "
                    "max_open_orders for the first order.",
                    422: "risk_limit: a limit refused the first order (fields.limit names it); nothing placed.",
                    429: "rate_limited: the order rate refused the first order.",
                    503: "index_stale: a price the plan needs is not live.",
                }
            ),
        },
        description="Plans the rebalance as the preview does and enters its orders through spot order entry (every "
        "pre-trade check applies), as one batch: every sell, then, once they have traded, every buy (a market "
        "order spending its planned USDT, or what is available if the sells fetched less). A refusal of the first "
        "order is this call's answer and nothing is written; a refusal later ends the batch partial with the "
        "refusal in error. A replayed client_id returns the batch and places nothing new (header "
        "Idempotent-Replayed: true). The targets become your saved targets.",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        targets, tolerance = selectors.targets_parse(data["targets"], data.get("tolerance"))
        batch, replayed = services.rebalance_place(
            user=request.user, targets=targets, tolerance=tolerance, client_id=data["client_id"]
        )
        response = Response(batch_dict(batch), status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        summary="Your rebalances",
        tags=["portfolio"],
        responses={200: BatchSerializer(many=True)},
        operation_id="portfolio_rebalance_list",
        description="Your rebalance batches, newest first, paginated.",
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.batches_of(user=request.user), request, view=self)
        return paginator.get_paginated_response([batch_dict(batch) for batch in page])


class RebalanceDetailApi(APIView):
    @extend_schema(
        summary="One rebalance",
        tags=["portfolio"],
        responses={200: BatchSerializer},
        description="One of your rebalance batches with its orders as they stand now.",
    )
    def get(self, request, batch_id: int):
        batch = selectors.batches_of(user=request.user).filter(pk=batch_id).first()
        if batch is None:
            raise NotFound("No such rebalance.")
        return Response(batch_dict(batch))


@extend_schema_serializer(component_name="RebalanceTargets")
class TargetsSerializer(serializers.Serializer):
    targets = serializers.DictField(child=DecimalString(), allow_null=True, help_text="null: none saved yet")
    tolerance = DecimalString()
    updated_at = UtcDateTime(allow_null=True)


def _targets_body(row) -> dict:
    if row is None:
        return {"targets": None, "tolerance": settings.PORTFOLIO_REBALANCE_TOLERANCE, "updated_at": None}
    return {"targets": row.targets, "tolerance": row.tolerance, "updated_at": row.updated_at}


class TargetsApi(APIView):
    @extend_schema_serializer(component_name="RebalanceTargetsInput")
    class InputSerializer(TargetsInputSerializer):
        pass

    @extend_schema(
        summary="Your target weights",
        tags=["portfolio"],
        responses={200: TargetsSerializer},
        description="The weights the Portfolio page measures your drift against: the last you rebalanced to or saved.",
    )
    def get(self, request):
        return Response(TargetsSerializer(_targets_body(selectors.targets_of(user=request.user))).data)

    @extend_schema(
        summary="Save your target weights",
        tags=["portfolio"],
        request=InputSerializer,
        responses={200: TargetsSerializer, **BAD_TARGETS},
        description="Keep these weights (and tolerance) as your targets, without trading.",
    )
    def put(self, request):
        data = validated(self.InputSerializer, request)
        targets, tolerance = selectors.targets_parse(data["targets"], data.get("tolerance"))
        row = services.rebalance_targets_save(user=request.user, targets=targets, tolerance=tolerance)
        return Response(TargetsSerializer(_targets_body(row)).data)


@extend_schema_serializer(component_name="PortfolioSuggestion")
class SuggestionSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["drift", "concentration"])
    asset = serializers.CharField()
    weight = DecimalString(step=selectors.DRIFT_STEP)
    target = DecimalString(allow_null=True)
    message = serializers.CharField(help_text="for people")


@extend_schema_serializer(component_name="PortfolioAdvice")
class AdviceSerializer(serializers.Serializer):
    targets = serializers.DictField(child=DecimalString(), allow_null=True)
    tolerance = DecimalString()
    concentration_threshold = DecimalString()
    weights = serializers.DictField(child=DecimalString(), help_text="the spot assets' weights now")
    drift = DecimalString(allow_null=True, help_text="from the saved targets; null without targets")
    suggestions = SuggestionSerializer(many=True)
    orders = PlannedOrderSerializer(many=True, help_text="what a rebalance to the saved targets would place")
    stale = serializers.BooleanField(help_text="a price used is the last known one, not live")


class SuggestionsApi(APIView):
    @extend_schema(
        summary="What the Portfolio page suggests",
        tags=["portfolio"],
        responses={200: AdviceSerializer},
        description="In plain words: your drift from your saved targets when it exceeds your tolerance (with the "
        "orders a rebalance would place), and any asset but USDT above the concentration threshold.",
    )
    def get(self, request):
        return Response(AdviceSerializer(selectors.advice_of(user=request.user)).data)


urlpatterns = [
    path("portfolio/rebalance/preview", RebalancePreviewApi.as_view(), name="portfolio_rebalance_preview"),
    path("portfolio/rebalance", RebalanceApi.as_view(), name="portfolio_rebalance"),
    path("portfolio/rebalance/<int:batch_id>", RebalanceDetailApi.as_view(), name="portfolio_rebalance_detail"),
    path("portfolio/targets", TargetsApi.as_view(), name="portfolio_targets"),
    path("portfolio/suggestions", SuggestionsApi.as_view(), name="portfolio_suggestions"),
]
