"""The settlement app's routes, mounted by trading/urls.py under /api/v1/ and /."""

from django.urls import path

from . import api

api_v1 = [
    path("ops/settlements", api.OpsSettlementsApi.as_view(), name="ops_settlements"),
]
web: list = []
