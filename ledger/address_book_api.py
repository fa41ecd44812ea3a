"""The withdrawal address book, whitelist-only mode, and cancelling a pending withdrawal
(API.md "Account safety")."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import safety_services
from accounts.api import AuthThrottle
from trading.api import validated
from trading.money import ASSETS
from trading.schema import UtcDateTime, errors

from . import selectors
from .api import WithdrawalSerializer
from .services import withdrawal_safety


@extend_schema_serializer(component_name="WithdrawalAddress")
class AddressSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    asset = serializers.ChoiceField(choices=ASSETS)
    address = serializers.CharField()
    network = serializers.CharField()
    label = serializers.CharField()
    created_at = UtcDateTime()
    usable_at = UtcDateTime(help_text="withdrawals to it are allowed from this time")
    usable = serializers.SerializerMethodField()

    def get_usable(self, entry) -> bool:
        return entry.usable_at <= timezone.now()


class WithdrawalAddressesApi(APIView):
    api_key_scopes = {"GET": "read", "POST": None}

    @extend_schema_serializer(component_name="WithdrawalAddressInput")
    class InputSerializer(serializers.Serializer):
        asset = serializers.ChoiceField(choices=ASSETS)
        address = serializers.CharField(max_length=120)
        label = serializers.CharField(max_length=64, help_text="your name for it")

    @extend_schema(
        summary="Your withdrawal address book",
        tags=["wallet"],
        responses={200: AddressSerializer(many=True)},
        operation_id="withdrawal_addresses_list",
    )
    def get(self, request):
        return Response(AddressSerializer(selectors.withdrawal_addresses_of(user=request.user), many=True).data)

    @extend_schema(
        summary="Save a withdrawal address",
        tags=["wallet"],
        request=InputSerializer,
        responses={
            201: AddressSerializer,
            **errors(
                {
                    400: "validation_error, invalid_address (not a valid address of the asset).",
                    409: "address_exists, address_book_full.",
                }
            ),
        },
        operation_id="withdrawal_addresses_add",
        description="A new address is usable after WITHDRAWAL_ADDRESS_DELAY_HOURS (24 h): `usable_at` says when.",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        entry = withdrawal_safety.withdrawal_address_add(
            user=request.user, asset=data["asset"], address=data["address"], label=data["label"]
        )
        return Response(AddressSerializer(entry).data, status=status.HTTP_201_CREATED)


class WithdrawalAddressApi(APIView):
    api_key_refused = True

    @extend_schema(
        summary="Delete a withdrawal address",
        tags=["wallet"],
        responses={204: None, **errors({404: "not_found: no such address in your book."})},
        operation_id="withdrawal_addresses_delete",
    )
    def delete(self, request, address_id: int):
        withdrawal_safety.withdrawal_address_delete(user=request.user, address_id=address_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_serializer(component_name="WithdrawalWhitelistMode")
class ModeSerializer(serializers.Serializer):
    whitelist_only = serializers.BooleanField(help_text="withdrawals go only to the address book")
    enforced = serializers.BooleanField(help_text="the address book binds now (on, or off but in its cool-off)")
    enforced_until = UtcDateTime(allow_null=True, help_text="turned off: when the cool-off ends")


def _mode(user) -> dict:
    return {
        "whitelist_only": user.withdrawal_whitelist_only,
        "enforced": safety_services.whitelist_enforced(user),
        "enforced_until": safety_services.whitelist_enforced_until(user),
    }


class WithdrawalAddressModeApi(APIView):
    api_key_refused = True
    throttle_scope = "otp"

    @extend_schema_serializer(component_name="WithdrawalWhitelistModeInput")
    class InputSerializer(serializers.Serializer):
        whitelist_only = serializers.BooleanField()
        otp = serializers.CharField(
            required=False, allow_blank=True, max_length=12, help_text="turning it off: a fresh 2FA code"
        )

    def get_throttles(self):
        return [AuthThrottle()] if self.request.method == "PUT" else super().get_throttles()

    @extend_schema(
        summary="Whitelist-only withdrawals: the mode",
        tags=["wallet"],
        responses={200: ModeSerializer},
        operation_id="withdrawal_addresses_mode_get",
    )
    def get(self, request):
        return Response(ModeSerializer(_mode(request.user)).data)

    @extend_schema(
        summary="Turn whitelist-only withdrawals on or off",
        tags=["wallet"],
        request=InputSerializer,
        responses={
            200: ModeSerializer,
            **errors(
                {
                    401: "otp_required, otp_invalid (turning it off).",
                    403: "two_factor_required (turning it off needs 2FA on).",
                    409: "withdraw_key_active (revoke your withdraw-scoped API keys first).",
                }
            ),
        },
        operation_id="withdrawal_addresses_mode_set",
        description="On: at once. Off: with a fresh 2FA code, and the address book keeps binding for "
        "WITHDRAWAL_WHITELIST_OFF_COOLOFF_HOURS (24 h).",
    )
    def put(self, request):
        data = validated(self.InputSerializer, request)
        user = safety_services.withdrawal_whitelist_set(
            user=request.user, enabled=data["whitelist_only"], otp=data.get("otp")
        )
        return Response(ModeSerializer(_mode(user)).data)


class WithdrawalCancelApi(APIView):
    api_key_scopes = {"POST": "withdraw"}

    @extend_schema(
        summary="Cancel a pending withdrawal",
        tags=["wallet"],
        request=None,
        responses={
            200: WithdrawalSerializer,
            **errors(
                {
                    404: "not_found: no such withdrawal of yours.",
                    409: "withdrawal_not_pending: already approved, rejected or cancelled.",
                }
            ),
        },
        operation_id="withdrawals_cancel",
        description="While it waits for review: the amount and fee held for it are released, once.",
    )
    def post(self, request, withdrawal_id: int):
        withdrawal = withdrawal_safety.withdrawal_cancel(user=request.user, withdrawal_id=withdrawal_id)
        return Response(WithdrawalSerializer(withdrawal).data)
