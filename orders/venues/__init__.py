"""Outside spot venues for the aggregated book and the smart order router: one interface
(``base.SpotVenue``), a simulated venue and a ccxt adapter, configured in
``settings.SPOT_VENUES`` (name -> settings; ``"class": "ccxt"`` picks the ccxt adapter)."""

from __future__ import annotations

from django.conf import settings

from .base import SpotVenue


def venue_get(name: str) -> SpotVenue:
    config = settings.SPOT_VENUES[name]
    if config.get("class", "simulated") == "ccxt":
        from .ccxt_venue import CcxtSpotVenue

        return CcxtSpotVenue(name, config)
    from .simulated import SimulatedSpotVenue

    return SimulatedSpotVenue(name, config, redis_url=settings.REDIS_URL or None)


def venues_all() -> list[SpotVenue]:
    return [venue_get(name) for name in sorted(settings.SPOT_VENUES)]
