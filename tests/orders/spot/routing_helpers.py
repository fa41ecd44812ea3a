"""Deterministic outside venues for the routing and RFQ tests (no latency, no faults unless a
test asks), and an engine runner on a thread for tests that go through the API end to end."""

from __future__ import annotations

from tests.processes import Repeat

# simx: tight but pricier levels after the first; simy: wide, cheap fee, never the best here.
VENUES = {
    "simx": {
        "offset_bps": "0",
        "spread_bps": "10",
        "step_bps": "10",
        "levels": 5,
        "level_quantity": "0.4",
        "growth": "0.5",
        "fee": "0.001",
        "latency_ms": 0,
    },
    "simy": {
        "offset_bps": "0",
        "spread_bps": "60",
        "step_bps": "10",
        "levels": 5,
        "level_quantity": "1",
        "growth": "0",
        "fee": "0.0005",
        "latency_ms": 0,
    },
}


def venues(**changes) -> dict:
    """The test venues, with some settings changed: ``venues(simx={"ambiguous": 1.0})``."""
    return {name: {**config, **changes.get(name, {})} for name, config in VENUES.items()}


def EngineThread(engine) -> Repeat:
    """Runs ``engine.run()`` in a loop on its own thread until the block ends, so a request
    that waits for the engine gets its answer."""
    return Repeat(engine.run, every=0.01)
