"""Deterministic outside venues for the routing and RFQ tests (no latency, no faults unless a
test asks), and an engine runner on a thread for tests that go through the API end to end."""

from __future__ import annotations

import threading

from django.db import connection

# simx: tight but pricier levels after the first; simy: wide, cheap fee, never the best here.
VENUES = {
    "simx": {"offset_bps": "0", "spread_bps": "10", "step_bps": "10", "levels": 5, "level_quantity": "0.4",
             "growth": "0.5", "fee": "0.001", "latency_ms": 0},
    "simy": {"offset_bps": "0", "spread_bps": "60", "step_bps": "10", "levels": 5, "level_quantity": "1",
             "growth": "0", "fee": "0.0005", "latency_ms": 0},
}


def venues(**changes) -> dict:
    """The test venues, with some settings changed: ``venues(simx={"ambiguous": 1.0})``."""
    return {name: {**config, **changes.get(name, {})} for name, config in VENUES.items()}


class EngineThread:
    """Runs ``engine.run()`` in a loop on its own thread (its own database connection) until
    stopped, so a request that waits for the engine gets its answer."""

    def __init__(self, engine):
        self.engine = engine
        self.stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        try:
            while not self.stop.is_set():
                self.engine.run()
                self.stop.wait(0.01)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.errors.append(exc)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        assert not self.errors, self.errors
