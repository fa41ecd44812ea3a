"""Account safety endpoints (API.md "Account safety"): sessions and devices, sign-in history,
the anti-phishing code. All are the trader's, signed in: API keys cannot use them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import IntParam, validated, validated_query
from trading.schema import UtcDateTime, errors

from . import safety_selectors, safety_services
from .api import AuthThrottle
from .models import UserSessionKind


@extend_schema_serializer(component_name="SignInSession")
class SessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=UserSessionKind.choices, help_text="browser, or token (an API sign-in)")
    device = serializers.CharField(help_text="browser (or client) and system, from the user agent")
    user_agent = serializers.CharField()
    ip = serializers.CharField(allow_null=True, help_text="the address it signed in from")
    last_seen_ip = serializers.CharField(allow_null=True)
    created_at = UtcDateTime(help_text="when it signed in")
    last_seen_at = UtcDateTime(help_text="its last request (browser) or token refresh (API), to the minute")
    current = serializers.BooleanField(help_text="the session this request is made from")


def _sessions(request) -> list[dict]:
    current = safety_selectors.current_session_id(request)
    return [
        {
            "id": s.pk,
            "kind": s.kind,
            "device": s.device or "unknown device",
            "user_agent": s.user_agent,
            "ip": s.ip,
            "last_seen_ip": s.last_seen_ip,
            "created_at": s.created_at,
            "last_seen_at": s.last_seen_at,
            "current": s.pk == current,
        }
        for s in safety_selectors.user_sessions_active(user=request.user)
    ]


class SessionsApi(APIView):
    api_key_refused = True

    @extend_schema(
        summary="Your signed-in sessions",
        tags=["accounts"],
        responses={200: SessionSerializer(many=True)},
        operation_id="sessions_list",
        description="Every session that can still be used (browser sessions and API sign-ins), most recently "
        "seen first, with its device, address and last use; `current` marks this request's.",
    )
    def get(self, request):
        return Response(SessionSerializer(_sessions(request), many=True).data)


class SessionRevokeApi(APIView):
    api_key_refused = True

    @extend_schema(
        summary="Sign a session out",
        tags=["accounts"],
        responses={204: None, **errors({404: "not_found: no such session of yours."})},
        operation_id="sessions_revoke",
        description="A browser session is signed out at its next request; an API sign-in's refresh token stops "
        "working at once (its current access token lasts until it expires, minutes).",
    )
    def delete(self, request, session_id: int):
        safety_services.user_session_revoke(user=request.user, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionsRevokeOthersApi(APIView):
    api_key_refused = True

    @extend_schema_serializer(component_name="SessionsRevoked")
    class OutputSerializer(serializers.Serializer):
        revoked = serializers.IntegerField(help_text="how many sessions were signed out")

    @extend_schema(
        summary="Sign every other session out",
        tags=["accounts"],
        request=None,
        responses={200: OutputSerializer},
        operation_id="sessions_revoke_others",
        description="Every session but the one this request is made from.",
    )
    def post(self, request):
        revoked = safety_services.user_sessions_revoke_others(
            user=request.user, keep_session_id=safety_selectors.current_session_id(request)
        )
        return Response(self.OutputSerializer({"revoked": revoked}).data)


@extend_schema_serializer(component_name="SignIn")
class SignInSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="the sign-in's audit record")
    at = UtcDateTime()
    ip = serializers.CharField(allow_null=True)
    device = serializers.CharField()
    user_agent = serializers.CharField()
    method = serializers.ChoiceField(
        choices=list(safety_selectors.SIGN_IN_METHODS),
        help_text="password, 2fa (password and code), token (API), oidc (an OpenID Connect provider), "
        "oidc_2fa (a provider and code)",
    )
    method_label = serializers.CharField()


class LoginHistoryApi(APIView):
    api_key_refused = True

    class QuerySerializer(serializers.Serializer):
        limit = IntParam(default=20, low=1, high=100, help_text="how many, 1 to 100 (20)")

    @extend_schema(
        summary="Your recent sign-ins",
        tags=["accounts"],
        parameters=[QuerySerializer],
        responses={200: SignInSerializer(many=True)},
        operation_id="login_history",
        description="The last sign-ins (browser, API token, staff console), newest first, with the address, the "
        "device and how the account was proved.",
    )
    def get(self, request):
        limit = validated_query(self.QuerySerializer, request)["limit"]
        history = safety_selectors.sign_in_history(user=request.user, limit=limit)
        return Response(SignInSerializer(history, many=True).data)


@extend_schema_serializer(component_name="AntiPhishingCode")
class AntiPhishingCodeSerializer(serializers.Serializer):
    code = serializers.CharField(allow_blank=True, help_text="empty: none set")


class AntiPhishingCodeApi(APIView):
    api_key_refused = True
    throttle_classes = [AuthThrottle]
    throttle_scope = "otp"

    @extend_schema_serializer(component_name="AntiPhishingCodeInput")
    class InputSerializer(serializers.Serializer):
        code = serializers.CharField(
            max_length=40, allow_blank=True, trim_whitespace=True, help_text="4 to 20 characters; empty clears it"
        )
        otp = serializers.CharField(
            required=False, allow_blank=True, max_length=12, help_text="a fresh code, when 2FA is on"
        )

    def get_throttles(self):
        return super().get_throttles() if self.request.method == "PUT" else []

    @extend_schema(
        summary="Your anti-phishing code",
        tags=["accounts"],
        responses={200: AntiPhishingCodeSerializer},
        operation_id="anti_phishing_code_get",
    )
    def get(self, request):
        return Response(AntiPhishingCodeSerializer({"code": request.user.anti_phishing_code}).data)

    @extend_schema(
        summary="Set your anti-phishing code",
        tags=["accounts"],
        request=InputSerializer,
        responses={
            200: AntiPhishingCodeSerializer,
            **errors({401: "otp_required, otp_invalid (2FA is on: send a fresh `otp`)."}),
        },
        operation_id="anti_phishing_code_set",
        description="Every email the platform sends you opens with this code: an email without it is not ours.",
    )
    def put(self, request):
        data = validated(self.InputSerializer, request)
        user = safety_services.anti_phishing_code_set(user=request.user, code=data["code"], otp=data.get("otp"))
        return Response(AntiPhishingCodeSerializer({"code": user.anti_phishing_code}).data)
