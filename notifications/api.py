from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationListApi(ListAPIView):
    serializer_class = NotificationSerializer

    def get_queryset(self):
        unread = self.request.query_params.get("unread") in {"1", "true", "yes"}
        return selectors.notification_list(user=self.request.user, unread_only=unread)

    @extend_schema(
        tags=["notifications"],
        parameters=[OpenApiParameter("unread", bool, required=False, description="only the unread ones")],
        description="Your notifications, newest first, paginated.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class NotificationDetailApi(APIView):
    @extend_schema(responses={200: NotificationSerializer}, tags=["notifications"])
    def get(self, request, notification_id: int):
        notification = selectors.notification_get(user=request.user, notification_id=notification_id)
        return Response(NotificationSerializer(notification).data)


class NotificationReadApi(APIView):
    @extend_schema(request=None, responses={200: NotificationSerializer}, tags=["notifications"])
    def post(self, request, notification_id: int):
        notification = services.notification_mark_read(user=request.user, notification_id=notification_id)
        return Response(NotificationSerializer(notification).data)
