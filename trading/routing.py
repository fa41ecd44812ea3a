"""Websocket routes.

Public routes take no session or user lookup: nothing wraps their connection or their
``send``, so the realtime hub can write to their sockets directly. A route that needs the
user wraps its own consumer in the session + auth stack; the origin check in
``trading.asgi`` applies to every route.
"""

from channels.auth import AuthMiddlewareStack
from django.urls import path

from marketdata.consumers import MarketConsumer
from orders.consumers import UserConsumer

websocket_urlpatterns = [
    path("ws/market/", MarketConsumer.as_asgi()),  # public market data
    path("ws/user/", AuthMiddlewareStack(UserConsumer.as_asgi())),  # the signed-in user's orders, fills, balances
]
