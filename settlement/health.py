"""/readyz: who leads the relay, and how far behind it is."""

from django.conf import settings
from django.utils import timezone

from trading.health import readiness_check
from trading.models import Lease

from .relay import LEASE, relay_lag_seconds


@readiness_check("relay")
def _relay() -> dict:
    lease = Lease.objects.filter(name=LEASE).values("holder", "epoch", "expires_at").first()
    leading = bool(lease and lease["holder"] and lease["expires_at"] > timezone.now())
    lag = relay_lag_seconds()
    limit = settings.RELAY_READY_MAX_LAG_SECONDS
    return {
        "ok": lag["backlog_age_seconds"] <= limit,
        "leader": lease["holder"] if leading else None,
        "epoch": lease["epoch"] if lease else None,
        "lag_seconds": lag["backlog_age_seconds"],
        "published": lag["cursor"].get("published"),
    }
