from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import FlagParam, validated_query
from trading.schema import UtcDateTime, errors

from . import kinds, selectors, services


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
    data = serializers.DictField(help_text="the event's figures (order id, amounts, status...); see docs")
    created_at = UtcDateTime()
    read_at = UtcDateTime(allow_null=True)


class NotificationListApi(ListAPIView):
    serializer_class = NotificationSerializer

    class QuerySerializer(serializers.Serializer):
        unread = FlagParam(help_text="only the unread ones (1, true or yes)")

    def get_queryset(self):
        query = validated_query(self.QuerySerializer, self.request)
        return selectors.notification_list(user=self.request.user, unread_only=query["unread"])

    @extend_schema(
        summary="Your notifications",
        tags=["notifications"],
        parameters=[QuerySerializer],
        description="Your notifications, newest first, paginated.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class NotificationDetailApi(APIView):
    @extend_schema(summary="One notification", responses={200: NotificationSerializer}, tags=["notifications"])
    def get(self, request, notification_id: int):
        notification = selectors.notification_get(user=request.user, notification_id=notification_id)
        return Response(NotificationSerializer(notification).data)


class NotificationReadApi(APIView):
    @extend_schema(
        summary="Mark a notification read",
        request=None,
        responses={200: NotificationSerializer},
        tags=["notifications"],
    )
    def post(self, request, notification_id: int):
        notification = services.notification_mark_read(user=request.user, notification_id=notification_id)
        return Response(NotificationSerializer(notification).data)


@extend_schema_serializer(component_name="NotificationsReadAll")
class ReadAllSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="how many were unread")


class NotificationReadAllApi(APIView):
    @extend_schema(
        summary="Mark all your notifications read",
        request=None,
        responses={200: ReadAllSerializer},
        tags=["notifications"],
    )
    def post(self, request):
        marked = services.notification_mark_all_read(user=request.user)
        return Response(ReadAllSerializer({"marked": marked}).data)


@extend_schema_serializer(component_name="NotificationChannels")
class ChannelsSerializer(serializers.Serializer):
    in_app = serializers.BooleanField()
    email = serializers.BooleanField()
    webhook = serializers.BooleanField(help_text="sent only while a webhook URL is set")


@extend_schema_serializer(component_name="NotificationWebhook")
class WebhookSerializer(serializers.Serializer):
    url = serializers.URLField()
    secret = serializers.CharField(help_text="signs each body: X-Meridian-Signature = sha256=HMAC(secret, ts.body)")


@extend_schema_serializer(component_name="NotificationPreferences")
class PreferencesSerializer(serializers.Serializer):
    events = serializers.DictField(child=ChannelsSerializer(), help_text="kind -> channel -> on/off")
    locked = serializers.ListField(child=serializers.CharField(), help_text="kinds that cannot be switched off")
    webhook = WebhookSerializer(allow_null=True)


def _preferences(user) -> dict:
    endpoint = selectors.webhook_for(user=user)
    return {
        "events": selectors.preferences_for(user=user),
        "locked": [kind for kind in kinds.KINDS if kinds.locked(kind)],
        "webhook": {"url": endpoint.url, "secret": endpoint.secret} if endpoint else None,
    }


class NotificationPreferencesApi(APIView):
    @extend_schema_serializer(component_name="NotificationPreferencesInput")
    class InputSerializer(serializers.Serializer):
        events = serializers.DictField(
            child=serializers.DictField(child=serializers.JSONField()),
            required=False,
            help_text="kind -> channel -> true/false; kinds and channels not named keep their setting",
        )
        webhook_url = serializers.URLField(
            required=False, allow_blank=True, allow_null=True, max_length=500, help_text="empty or null removes it"
        )
        rotate_webhook_secret = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        summary="Your notification preferences", responses={200: PreferencesSerializer}, tags=["notifications"]
    )
    def get(self, request):
        return Response(PreferencesSerializer(_preferences(request.user)).data)

    @extend_schema(
        summary="Change your notification preferences",
        request=InputSerializer,
        responses={
            200: PreferencesSerializer,
            **errors({400: "validation_error: unknown kind or channel, or security / risk_alert switched off."}),
        },
        examples=[
            OpenApiExample(
                "fills by email, no webhook for price alerts",
                request_only=True,
                value={"events": {"order_filled": {"email": True}, "price_alert": {"webhook": False}}},
            )
        ],
        tags=["notifications"],
    )
    def put(self, request):
        from trading.api import validated

        data = validated(self.InputSerializer, request)
        services.preferences_update(
            user=request.user,
            events=data.get("events") or {},
            webhook_url=data.get("webhook_url", ...),
            rotate_secret=data["rotate_webhook_secret"],
        )
        return Response(PreferencesSerializer(_preferences(request.user)).data)
