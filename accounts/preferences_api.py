"""GET/PUT /api/v1/me/settings: the trader's time zone and theme."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api import validated

from .models import Theme
from .preferences import user_settings_get, user_settings_update


class UserSettingsApi(APIView):
    @extend_schema_serializer(component_name="UserSettingsInput")
    class InputSerializer(serializers.Serializer):
        timezone = serializers.CharField(
            required=False, max_length=64, help_text="IANA time zone name, e.g. Europe/Paris; UTC by default."
        )
        theme = serializers.ChoiceField(choices=Theme.choices, required=False)

    @extend_schema_serializer(component_name="UserSettings")
    class OutputSerializer(serializers.Serializer):
        timezone = serializers.CharField(help_text="The zone the pages show times in (the API stays in UTC).")
        theme = serializers.ChoiceField(choices=Theme.choices)

    @extend_schema(summary="Your display settings", responses={200: OutputSerializer}, tags=["accounts"])
    def get(self, request):
        return Response(self.OutputSerializer(user_settings_get(user=request.user)).data)

    @extend_schema(
        summary="Change your display settings",
        request=InputSerializer,
        responses={200: OutputSerializer},
        tags=["accounts"],
    )
    def put(self, request):
        data = validated(self.InputSerializer, request)
        return Response(self.OutputSerializer(user_settings_update(user=request.user, **data)).data)
