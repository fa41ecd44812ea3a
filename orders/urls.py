"""The orders app's routes, mounted by trading/urls.py under /api/v1/ and /."""

from django.urls import path

from trading import converters  # noqa: F401  (<symbol:>)

from .options import api, exposure_api
from .options import web as options_web
from .spot import api as spot_api
from .spot import routing_api
from .spot import web as spot_web

api_v1: list = [
    path("orders", spot_api.SpotOrdersApi.as_view(), name="spot_orders"),
    path("orders/cancel-all", spot_api.SpotOrdersCancelAllApi.as_view(), name="spot_orders_cancel_all"),
    path("orders/<int:order_id>", spot_api.SpotOrderApi.as_view(), name="spot_order"),
    path("fills", spot_api.FillsApi.as_view(), name="spot_fills"),
    path("markets/<str:symbol>/aggregated-book", routing_api.AggregatedBookApi.as_view(), name="aggregated_book"),
    path("rfq", routing_api.RfqApi.as_view(), name="rfq"),
    path("rfq/<str:quote_id>/accept", routing_api.RfqAcceptApi.as_view(), name="rfq_accept"),
    path("options/quotes", api.OptionQuotesApi.as_view(), name="option_quotes"),
    path("options/orders", api.OptionOrdersApi.as_view(), name="option_orders"),
    path("options/positions", api.OptionPositionsApi.as_view(), name="option_positions"),
    path("options/exercises", api.OptionExercisesApi.as_view(), name="option_exercises"),
    path("ops/risk/exposure", exposure_api.OpsRiskExposureApi.as_view(), name="ops_risk_exposure"),
]
web: list = [
    path("trade/", spot_web.trade, name="trade"),
    path("markets/<symbol:symbol>/", spot_web.market, name="market"),
    path("options/", options_web.options, name="options"),
]
