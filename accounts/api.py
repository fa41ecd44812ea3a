"""REST endpoints for accounts: thin views over services and selectors.

Nested ``InputSerializer``/``OutputSerializer`` classes get explicit OpenAPI component names:
by class name alone they would collide across views and overwrite each other in the schema.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from trading.api import validated
from trading.schema import UtcDateTime, errors

from . import selectors, services
from .models import KycStatus


class AuthThrottle(ScopedRateThrottle):
    scope_attr = "throttle_scope"


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthThrottle]
    throttle_scope = "auth"

    @extend_schema_serializer(component_name="RegisterInput")
    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        password = serializers.CharField(write_only=True, trim_whitespace=False)

    @extend_schema_serializer(component_name="RegisteredUser")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        email = serializers.EmailField()

    @extend_schema(
        summary="Create an account", request=InputSerializer, responses={201: OutputSerializer}, tags=["accounts"]
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        user = services.user_register(email=data["email"], password=data["password"])
        return Response(self.OutputSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthThrottle]
    throttle_scope = "auth"

    @extend_schema_serializer(component_name="TokenObtainInput")
    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        password = serializers.CharField(write_only=True, trim_whitespace=False)
        otp = serializers.CharField(required=False, allow_blank=True, max_length=12)

    @extend_schema(
        summary="Sign in: an access and a refresh token",
        request=InputSerializer,
        responses={
            200: TokenPairSerializer,
            **errors({401: "invalid_credentials, otp_required (2FA is on: send `otp`), otp_invalid."}),
        },
        tags=["accounts"],
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        tokens = services.auth_tokens_issue(
            request=request._request, email=data["email"], password=data["password"], otp=data.get("otp") or None
        )
        return Response(TokenPairSerializer(tokens).data)


class TokenRefreshApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthThrottle]
    throttle_scope = "auth"

    @extend_schema_serializer(component_name="TokenRefreshInput")
    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField()

    @extend_schema(
        summary="Refresh the token pair",
        request=InputSerializer,
        responses={200: TokenPairSerializer, **errors({401: "token_invalid: expired, malformed or already used."})},
        tags=["accounts"],
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        return Response(
            TokenPairSerializer(
                services.auth_tokens_refresh(refresh=data["refresh"], ip=request.META.get("REMOTE_ADDR"))
            ).data
        )


class TwoFactorSetupApi(APIView):
    api_key_refused = True  # the trader, signed in, not a bot
    throttle_classes = [AuthThrottle]
    throttle_scope = "otp"

    @extend_schema_serializer(component_name="TwoFactorSetupInput")
    class InputSerializer(serializers.Serializer):
        password = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        otp = serializers.CharField(required=False, allow_blank=True, max_length=12)

    @extend_schema_serializer(component_name="TwoFactorSetupOutput")
    class OutputSerializer(serializers.Serializer):
        otpauth_url = serializers.CharField()
        qr_svg = serializers.CharField()
        secret = serializers.CharField()

    @extend_schema(
        summary="Start 2FA setup (a new TOTP device)",
        request=InputSerializer,
        responses={200: OutputSerializer},
        tags=["accounts"],
        description="Creates a TOTP device that is not active yet. Replacing an active device "
        "requires `password` and `otp`.",
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        setup = services.two_factor_setup(user=request.user, password=data.get("password"), otp=data.get("otp"))
        return Response(self.OutputSerializer(setup).data)


class TwoFactorStateSerializer(serializers.Serializer):
    two_factor_enabled = serializers.BooleanField()


class TwoFactorConfirmApi(APIView):
    api_key_refused = True  # the trader, signed in, not a bot
    throttle_classes = [AuthThrottle]
    throttle_scope = "otp"

    @extend_schema_serializer(component_name="TwoFactorConfirmInput")
    class InputSerializer(serializers.Serializer):
        otp = serializers.CharField(max_length=12)

    @extend_schema(
        summary="Turn on 2FA with a first code",
        request=InputSerializer,
        responses={200: TwoFactorStateSerializer},
        tags=["accounts"],
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        services.two_factor_confirm(user=request.user, otp=data["otp"])
        return Response(TwoFactorStateSerializer({"two_factor_enabled": True}).data)


class ReauthSerializer(serializers.Serializer):
    password = serializers.CharField(trim_whitespace=False)
    otp = serializers.CharField(required=False, allow_blank=True, max_length=12)


class TwoFactorDisableApi(APIView):
    api_key_refused = True  # the trader, signed in, not a bot
    throttle_classes = [AuthThrottle]
    throttle_scope = "otp"

    @extend_schema(
        summary="Turn off 2FA",
        request=ReauthSerializer,
        responses={200: TwoFactorStateSerializer},
        tags=["accounts"],
    )
    def post(self, request):
        data = validated(ReauthSerializer, request)
        services.two_factor_disable(user=request.user, password=data["password"], otp=data.get("otp"))
        return Response(TwoFactorStateSerializer({"two_factor_enabled": False}).data)


class PasswordChangeApi(APIView):
    api_key_refused = True  # the trader, signed in, not a bot
    throttle_classes = [AuthThrottle]
    throttle_scope = "otp"

    @extend_schema_serializer(component_name="PasswordChangeInput")
    class InputSerializer(serializers.Serializer):
        current_password = serializers.CharField(trim_whitespace=False)
        new_password = serializers.CharField(trim_whitespace=False)
        otp = serializers.CharField(required=False, allow_blank=True, max_length=12)

    @extend_schema(summary="Change the password", request=InputSerializer, responses={204: None}, tags=["accounts"])
    def post(self, request):
        data = validated(self.InputSerializer, request)
        services.password_change(
            user=request.user,
            current_password=data["current_password"],
            new_password=data["new_password"],
            otp=data.get("otp"),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailChangeApi(APIView):
    api_key_refused = True  # the trader, signed in, not a bot
    throttle_classes = [AuthThrottle]
    throttle_scope = "otp"

    @extend_schema_serializer(component_name="EmailChangeInput")
    class InputSerializer(ReauthSerializer):
        new_email = serializers.EmailField()

    @extend_schema_serializer(component_name="Email")
    class OutputSerializer(serializers.Serializer):
        email = serializers.EmailField()

    @extend_schema(
        summary="Change the email address",
        request=InputSerializer,
        responses={200: OutputSerializer},
        tags=["accounts"],
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        user = services.email_change(
            user=request.user, password=data["password"], otp=data.get("otp"), new_email=data["new_email"]
        )
        return Response(self.OutputSerializer(user).data)


class KycSummarySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=KycStatus.choices)
    tier = serializers.IntegerField()
    submitted_at = UtcDateTime(allow_null=True)
    decided_at = UtcDateTime(allow_null=True)
    rejection_reason = serializers.CharField(allow_blank=True)


class MeApi(APIView):
    @extend_schema_serializer(component_name="Profile")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        email = serializers.EmailField()
        date_joined = UtcDateTime()
        is_staff = serializers.BooleanField()
        two_factor_enabled = serializers.BooleanField()
        kyc = KycSummarySerializer()
        kyc_status = serializers.ChoiceField(choices=KycStatus.choices)
        kyc_tier = serializers.IntegerField(help_text="0 none, 1 approved")

    @extend_schema(summary="Your profile", responses={200: OutputSerializer}, tags=["accounts"])
    def get(self, request):
        return Response(self.OutputSerializer(selectors.user_profile(user=request.user)).data)


class KycApi(APIView):
    @extend_schema_serializer(component_name="KycSubmissionInput")
    class InputSerializer(serializers.Serializer):
        full_name = serializers.CharField(max_length=200)
        country = serializers.CharField(max_length=2, min_length=2)
        date_of_birth = serializers.DateField()
        document = serializers.FileField()

    @extend_schema(summary="Your KYC status", responses={200: KycSummarySerializer}, tags=["accounts"])
    def get(self, request):
        return Response(KycSummarySerializer(selectors.kyc_profile_for(user=request.user)).data)

    @extend_schema(
        summary="Submit KYC",
        request={"multipart/form-data": InputSerializer},
        responses={201: KycSummarySerializer, **errors({409: "kyc_already_submitted: pending or approved already."})},
        tags=["accounts"],
    )
    def post(self, request):
        data = validated(self.InputSerializer, request)
        profile = services.kyc_submit(user=request.user, **data)
        return Response(KycSummarySerializer(profile).data, status=status.HTTP_201_CREATED)
