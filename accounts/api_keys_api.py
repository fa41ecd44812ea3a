"""API keys for trading bots (API.md "API keys"): made, listed and revoked by the trader."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import validated
from trading.schema import UtcDateTime, errors

from . import api_key_selectors, api_key_services
from .api import AuthThrottle
from .models import ApiKeyScope


@extend_schema_serializer(component_name="ApiKey")
class ApiKeySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    key = serializers.CharField(help_text="the public id, sent as X-API-KEY")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKeyScope.values))
    ip_allowlist = serializers.ListField(child=serializers.CharField(), help_text="empty: any address")
    created_at = UtcDateTime()
    last_used_at = UtcDateTime(allow_null=True)
    last_used_ip = serializers.CharField(allow_null=True)
    revoked_at = UtcDateTime(allow_null=True)
    status = serializers.SerializerMethodField()

    def get_status(self, key) -> str:
        return "active" if key.revoked_at is None else "revoked"


@extend_schema_serializer(component_name="ApiKeyCreated")
class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret = serializers.CharField(help_text="shown this once: keep it, it signs your requests")


class _OtpInput(serializers.Serializer):
    otp = serializers.CharField(max_length=12, help_text="a fresh code from your authenticator")


class ApiKeysApi(APIView):
    api_key_refused = True  # keys are made by the trader, signed in
    throttle_classes = [AuthThrottle]
    throttle_scope = "otp"

    @extend_schema_serializer(component_name="ApiKeyInput")
    class InputSerializer(_OtpInput):
        label = serializers.CharField(max_length=64, help_text="your name for it, e.g. the bot's")
        scopes = serializers.ListField(
            child=serializers.CharField(max_length=16), max_length=3, help_text="read, trade, withdraw"
        )
        ip_allowlist = serializers.ListField(
            child=serializers.CharField(max_length=64),
            required=False,
            max_length=50,
            help_text="addresses or CIDR networks the key may be used from; empty or absent: any",
        )

    @extend_schema(
        summary="Your API keys",
        tags=["accounts"],
        responses={200: ApiKeySerializer(many=True)},
        operation_id="api_keys_list",
        description="Every key you made, newest first, with when and from where it was last used; never the secret.",
    )
    def get(self, request):
        return Response(ApiKeySerializer(api_key_selectors.api_keys_of(user=request.user), many=True).data)

    @extend_schema(
        summary="Make an API key",
        tags=["accounts"],
        request=InputSerializer,
        responses={
            201: ApiKeyCreatedSerializer,
            **errors(
                {
                    400: "validation_error (`fields` names the field), otp_not_configured (turn on 2FA first).",
                    401: "otp_invalid: the code is wrong or was already used.",
                    409: "whitelist_required (the withdraw scope), api_key_limit_reached.",
                }
            ),
        },
        examples=[
            OpenApiExample(
                "a trading bot",
                request_only=True,
                value={
                    "label": "grid bot",
                    "scopes": ["read", "trade"],
                    "ip_allowlist": ["203.0.113.7"],
                    "otp": "123456",
                },
            )
        ],
        operation_id="api_keys_create",
        description="Needs 2FA on and a fresh code. The secret is in this answer only.",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        key, secret = api_key_services.api_key_create(
            user=request.user,
            label=data["label"],
            scopes=data["scopes"],
            ip_allowlist=data.get("ip_allowlist"),
            otp=data["otp"],
        )
        key.secret = secret
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(APIView):
    api_key_refused = True
    throttle_classes = [AuthThrottle]
    throttle_scope = "otp"

    @extend_schema_serializer(component_name="ApiKeyRevokeInput")
    class InputSerializer(_OtpInput):
        pass

    @extend_schema(
        summary="Revoke an API key",
        tags=["accounts"],
        request=InputSerializer,
        responses={
            200: ApiKeySerializer,
            **errors(
                {401: "otp_invalid: the code is wrong or was already used.", 404: "not_found: no such key of yours."}
            ),
        },
        operation_id="api_keys_revoke",
        description="The key stops working at once. Revoking a revoked key answers it as it is.",
    )
    def post(self, request, key_id: int):
        data = validated(self.InputSerializer, request)
        key = api_key_services.api_key_revoke(user=request.user, key_id=key_id, otp=data["otp"])
        return Response(ApiKeySerializer(key).data)
