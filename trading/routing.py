"""Websocket routes; market and user streams plug in here."""

websocket_urlpatterns: list = []
