"""The orders app's routes, mounted by trading/urls.py under /api/v1/ and /."""

from django.urls import path

from . import api

api_v1: list = [
    path("options/quotes", api.OptionQuotesApi.as_view(), name="option_quotes"),
    path("options/orders", api.OptionOrdersApi.as_view(), name="option_orders"),
    path("options/positions", api.OptionPositionsApi.as_view(), name="option_positions"),
    path("options/exercises", api.OptionExercisesApi.as_view(), name="option_exercises"),
]
web: list = []
