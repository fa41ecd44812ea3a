"""Websocket routes."""

from django.urls import path

from marketdata.consumers import MarketConsumer

websocket_urlpatterns = [
    path("ws/market/", MarketConsumer.as_asgi()),
]
