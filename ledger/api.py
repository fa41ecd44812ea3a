"""Wallet API: balances, ledger history, withdrawals, deposit addresses, demo faucet."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from trading.api import ChoiceParam, validated, validated_query
from trading.money import ASSETS, check_asset, parse_amount
from trading.schema import DecimalInput, DecimalString, UtcDateTime, errors

from . import selectors, services
from .deposit_addresses import deposit_address
from .models import TransferKind, WithdrawalStatus


class BalanceSerializer(serializers.Serializer):
    asset = serializers.ChoiceField(choices=ASSETS)
    available = DecimalString(asset_source="asset")
    held = DecimalString(asset_source="asset")
    total = DecimalString(asset_source="asset")


class BalancesApi(APIView):
    @extend_schema(summary="Your balances", responses={200: BalanceSerializer(many=True)}, tags=["wallet"])
    def get(self, request):
        return Response(BalanceSerializer(selectors.balances_for(user=request.user), many=True).data)


class LedgerEntrySerializer(serializers.Serializer):
    id = serializers.CharField()
    asset = serializers.ChoiceField(choices=ASSETS)
    amount = DecimalString(asset_source="asset")
    direction = serializers.ChoiceField(choices=["in", "out"], help_text="in: credited to you; out: debited from you")
    kind = serializers.ChoiceField(
        choices=TransferKind.choices, help_text="posted, pending (a hold), post_pending, void_pending"
    )
    status = serializers.SerializerMethodField(help_text="posted, held, released (hold posted or voided)")
    code = serializers.CharField(help_text="reason: deposit, withdrawal, withdrawal_fee, faucet, trade, ...")
    reference = serializers.CharField()
    created_at = UtcDateTime()

    @extend_schema_field(serializers.ChoiceField(choices=["posted", "held", "released"]))
    def get_status(self, obj) -> str:
        if obj.kind == "pending":
            return "released" if obj.is_resolved else "held"
        return "posted"


class LedgerApi(ListAPIView):
    serializer_class = LedgerEntrySerializer

    def get_queryset(self):
        return selectors.history_for(user=self.request.user)

    @extend_schema(summary="Your ledger transfers", tags=["wallet"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@extend_schema_serializer(component_name="WithdrawalBeneficiary")
class BeneficiarySerializer(serializers.Serializer):
    """The travel rule's data: required at or above TRAVEL_RULE_THRESHOLD_USD (1,000 USD)."""

    name = serializers.CharField(required=False, max_length=200, help_text="who receives the funds")
    wallet_type = serializers.ChoiceField(
        choices=["hosted", "self_hosted"], required=False, help_text="at an exchange/custodian, or your own wallet"
    )
    vasp = serializers.CharField(required=False, max_length=200, help_text="hosted: the exchange or custodian")
    ownership_attested = serializers.BooleanField(
        required=False, help_text="self_hosted: you confirm the wallet is yours"
    )


@extend_schema_field(BeneficiarySerializer)
class _BeneficiaryInput(serializers.JSONField):
    """Taken as sent and checked by the service (``beneficiary_clean``), whose refusals name
    the field as the travel rule's do: ``beneficiary.vasp``."""


@extend_schema_serializer(component_name="WithdrawalBeneficiaryStored")
class BeneficiaryOutSerializer(BeneficiarySerializer):
    attested_at = UtcDateTime(required=False, help_text="when you confirmed owning the self-hosted wallet")


class WithdrawalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    asset = serializers.ChoiceField(choices=ASSETS)
    amount = DecimalString(asset_source="asset")
    fee = DecimalString(asset_source="asset")
    address = serializers.CharField()
    status = serializers.ChoiceField(choices=WithdrawalStatus.choices)
    created_at = UtcDateTime()
    decided_at = UtcDateTime(allow_null=True)
    rejection_reason = serializers.CharField()
    network_txid = serializers.CharField()
    beneficiary = BeneficiaryOutSerializer(help_text="the travel rule's data, as given; {} when none")


class WithdrawalsApi(ListAPIView):
    api_key_scopes = {"POST": "withdraw"}  # a key needs the withdraw scope to request one
    serializer_class = WithdrawalSerializer

    @extend_schema_serializer(component_name="WithdrawalRequestInput")
    class InputSerializer(serializers.Serializer):
        asset = serializers.ChoiceField(choices=ASSETS)
        amount = DecimalInput(help_text='e.g. "0.015"; at most the asset\'s decimal places')
        address = serializers.CharField(max_length=120)
        otp = serializers.CharField(required=False, allow_blank=True, max_length=12)
        beneficiary = _BeneficiaryInput(required=False)

        def validate(self, attrs):
            # at most the asset's places, by the one strict parser (its validation_error names the field)
            attrs["amount"] = parse_amount(attrs["asset"], attrs["amount"])
            return attrs

    def get_queryset(self):
        return selectors.withdrawals_for(user=self.request.user)

    @extend_schema(summary="Your withdrawals", tags=["wallet"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Request a withdrawal",
        request=InputSerializer,
        responses={
            201: WithdrawalSerializer,
            **errors(
                {
                    401: "otp_required, otp_invalid (and the usual authentication errors).",
                    403: "two_factor_required, kyc_required, withdrawal_locked (24 hours after a password or 2FA "
                    "change), compliance_blocked (the address or beneficiary is on a sanctions list).",
                    409: "insufficient_funds, idempotency_conflict (the Idempotency-Key was used for another "
                    "withdrawal).",
                    422: "travel_rule_required: at or above 1,000 USD the beneficiary's details are needed "
                    "(`fields` names each missing one, e.g. `beneficiary.vasp`).",
                }
            ),
        },
        tags=["wallet"],
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        examples=[
            OpenApiExample(
                "BTC",
                request_only=True,
                value={
                    "asset": "BTC",
                    "amount": "0.015",
                    "address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
                    "otp": "123456",
                },
            )
        ],
        description="Needs 2FA on with a fresh code, approved KYC, and no password or 2FA change in the "
        "last 24 hours. The amount plus fee is held until staff approve or reject.",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        withdrawal = services.withdrawal_request(
            user=request.user,
            asset=data["asset"],
            amount=data["amount"],
            address=data["address"],
            otp=data.get("otp"),
            idempotency_key=request.headers.get("Idempotency-Key", "")[:100],
            beneficiary=data.get("beneficiary"),
            via_api_key=isinstance(request.auth, ApiKey),  # a key withdraws only to the address book
        )
        return Response(WithdrawalSerializer(withdrawal).data, status=status.HTTP_201_CREATED)


class WithdrawalDetailApi(APIView):
    @extend_schema(summary="One withdrawal", responses={200: WithdrawalSerializer}, tags=["wallet"])
    def get(self, request, withdrawal_id: int):
        return Response(
            WithdrawalSerializer(selectors.withdrawal_get(user=request.user, withdrawal_id=withdrawal_id)).data
        )


class DepositAddressApi(APIView):
    @extend_schema_serializer(component_name="DepositAddress")
    class OutputSerializer(serializers.Serializer):
        asset = serializers.CharField()
        network = serializers.CharField()
        address = serializers.CharField()
        demo = serializers.BooleanField()

    class QuerySerializer(serializers.Serializer):
        asset = ChoiceParam(ASSETS, required=True, parse=check_asset)

    @extend_schema(
        summary="Your deposit address",
        parameters=[QuerySerializer],
        responses={200: OutputSerializer},
        tags=["wallet"],
    )
    def get(self, request):
        asset = validated_query(self.QuerySerializer, request)["asset"]
        return Response(self.OutputSerializer(deposit_address(user=request.user, asset=asset)).data)


class FaucetApi(APIView):
    @extend_schema_serializer(component_name="FaucetInput")
    class InputSerializer(serializers.Serializer):
        asset = serializers.ChoiceField(choices=ASSETS)

    @extend_schema(
        summary="Demo funds (demo mode only)",
        request=InputSerializer,
        responses={201: LedgerEntrySerializer, **errors({403: "faucet_disabled: not in demo mode."})},
        tags=["wallet"],
        description="Demo mode only.",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        transfer = services.faucet_credit(user=request.user, asset=data["asset"])
        transfer.direction, transfer.is_resolved = "in", False
        return Response(LedgerEntrySerializer(transfer).data, status=status.HTTP_201_CREATED)
