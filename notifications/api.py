from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import FlagParam, validated_query
from trading.schema import UtcDateTime

from . import selectors, services


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
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
