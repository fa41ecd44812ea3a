"""The portfolio app's routes: the API under /api/v1/ and the Portfolio page."""

from . import api, rebalance_api, reports_api, web

api_v1 = [*api.urlpatterns, *reports_api.urlpatterns, *rebalance_api.urlpatterns]
web = web.urlpatterns
