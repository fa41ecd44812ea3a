"""ASGI entry point (daphne): HTTP through Django, websockets through Channels."""

import os
from functools import partialmethod

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs the app registry)
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from trading.routing import websocket_urlpatterns  # noqa: E402
from trading.workers import start_all as start_embedded_workers  # noqa: E402


def _daphne_leaves_bodies_to_django() -> None:
    """Daphne takes requests through Twisted's ``Request``, which by default also parses a
    multipart or form body into ``request.args`` - which daphne never reads - and answers a
    malformed one (no boundary, say) with a bare 400 before Django sees it. Turned off, the
    body reaches Django whole: its parser errors answer in the API's error shape, and an
    upload is not copied into memory a second time."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # served by another ASGI server
        return
    if not getattr(WebRequest, "_leaves_bodies_to_django", False):
        WebRequest.__init__ = partialmethod(WebRequest.__init__, parsePOSTFormSubmission=False)
        WebRequest._leaves_bodies_to_django = True


_daphne_leaves_bodies_to_django()

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
