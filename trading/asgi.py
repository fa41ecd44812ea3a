"""ASGI entry point (daphne): HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs the app registry)
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from django.conf import settings  # noqa: E402

from trading.routing import websocket_urlpatterns  # noqa: E402
from trading.workers import start_all as start_embedded_workers  # noqa: E402

if settings.EMBEDDED and settings.EMBEDDED_WORKERS:
    # Embedded mode: the singletons run as threads of this one process.
    start_embedded_workers()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Sessions and auth per route (trading.routing): none for the public market stream.
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
