"""/readyz: who leads each spot symbol's engine, and how long its oldest waiting order has
waited."""

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from marketdata.services import SPOT_MARKETS
from trading.health import readiness_check
from trading.models import Lease

from .models import SpotOrder, SpotStatus
from .runner import lease_name


@readiness_check("engine")
def _engines() -> dict:
    now = timezone.now()
    leases = {
        row["name"]: row
        for row in Lease.objects.filter(name__in=[lease_name(s) for s in SPOT_MARKETS]).values(
            "name", "holder", "epoch", "expires_at"
        )
    }
    oldest = dict(SpotOrder.objects.filter(status=SpotStatus.NEW).values_list("symbol").annotate(t=Min("created_at")))
    limit = settings.ENGINE_READY_MAX_BACKLOG_SECONDS
    symbols, ok = {}, True
    for symbol in SPOT_MARKETS:
        lease = leases.get(lease_name(symbol))
        leading = bool(lease and lease["holder"] and lease["expires_at"] > now)
        waited = (now - oldest[symbol]).total_seconds() if symbol in oldest else 0.0
        ok = ok and waited <= limit
        symbols[symbol] = {
            "leader": lease["holder"] if leading else None,
            "epoch": lease["epoch"] if lease else None,
            "oldest_waiting_seconds": round(waited, 3),
        }
    return {"ok": ok, "symbols": symbols}
