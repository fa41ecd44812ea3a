"""The monitor: a singleton (lease ``monitor``) that every ``MONITOR_INTERVAL_SECONDS`` runs
every probe at once, each on a thread of its own with ``MONITOR_PROBE_TIMEOUT_SECONDS``,
records the round (``services.round_record``) and sends the alerts it produced.

A probe that has not answered in time counts as failed ("timeout"); its thread is left to
finish on its own (daemon) — a hung dependency never holds up the round. The alerts go out
on a thread too, so a slow mail server does not delay the next round either.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django.utils import timezone

from trading.leases import Singleton

from . import probes, services
from .alerting import alerts_send

logger = logging.getLogger(__name__)


def _run_probe(probe, result: dict) -> None:
    try:
        ok, detail = probe()
        result["outcome"] = (bool(ok), detail)
    except Exception as exc:  # a probe reports a failure, it does not raise it
        result["outcome"] = (False, {"error": f"{type(exc).__name__}: {exc}"[:500]})
    finally:
        connection.close()


def probe_all(checks: dict | None = None, timeout: float | None = None) -> list[services.Outcome]:
    """Run every probe concurrently; the outcome of each (failed with "timeout" when late)."""
    checks = probes.all_probes() if checks is None else checks
    timeout = settings.MONITOR_PROBE_TIMEOUT_SECONDS if timeout is None else timeout
    running = []
    for name, probe in checks.items():
        result: dict = {}
        thread = threading.Thread(target=_run_probe, args=(probe, result), name=f"probe-{name}", daemon=True)
        thread.start()
        running.append((name, thread, result))
    deadline = time.monotonic() + timeout
    outcomes = []
    for name, thread, result in running:
        thread.join(max(0.0, deadline - time.monotonic()))
        ok, detail = result.get("outcome", (False, {"error": f"timeout: no answer within {timeout:g}s"}))
        outcomes.append(services.Outcome(check=name, ok=ok, detail=detail))
    return outcomes


class Monitor:
    def __init__(self, holder: str, announce=None):
        self.holder = holder
        self.announce = announce or (lambda line: None)
        self._next = 0.0

    def tick(self, epoch: int) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + settings.MONITOR_INTERVAL_SECONDS
        outcomes = probe_all()
        alerts = services.round_record(outcomes=outcomes, epoch=epoch, holder=self.holder, now=timezone.now())
        failing = sorted(o.check for o in outcomes if not o.ok)
        self.announce(f"ROUND checks={len(outcomes)} failing_probes={','.join(failing) or '-'} alerts={len(alerts)}")
        for alert in alerts:
            self.announce(f"ALERT {alert.kind} check={alert.check} incident={alert.incident_id}")
        if alerts:
            threading.Thread(target=_send, args=(alerts,), name="ops-alerts", daemon=True).start()
        return False


def _send(alerts) -> None:
    try:
        alerts_send(alerts)
    finally:
        connection.close()


class DatabaseWatch:
    """While PostgreSQL is out of reach the monitor cannot hold its lease nor record
    anything, so the leader that stepped down for it keeps probing the database alone and
    tells ``OPS_ALERT_EMAILS`` and ``OPS_ALERT_URLS`` directly (the staff notifications live
    in the database too): an alert once the rule says failing, a recovery once it answers
    again, and then the incident is recorded after the fact."""

    def __init__(self, announce):
        self.announce = announce
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ops-database-watch", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        from . import rules
        from .alerting import alerts_send

        rule, state, started_at, alerted = services.rule(), rules.CheckStatus(), None, None
        try:
            while True:
                [outcome] = probe_all({"database": probes.database})
                now = timezone.now()
                state, transition = rules.observe(state, outcome.ok, now, rule)
                if transition == rules.FAILED:
                    started_at = now
                    alert = services.Alert("failed", 0, "database", now, None, outcome.detail)
                    self.announce("ALERT failed check=database (out of band: the database is unreachable)")
                    alerts_send([alert], direct_only=True)
                    alerted = alert
                elif transition == rules.RECOVERED or (state.status == rules.OK and outcome.ok):
                    if alerted is not None:
                        recovered = services.Alert("recovered", 0, "database", started_at, now, alerted.detail)
                        self.announce("ALERT recovered check=database")
                        alerts_send([recovered], direct_only=True)
                        services.incident_record_after(
                            check="database", started_at=started_at, resolved_at=now, detail=alerted.detail
                        )
                    return
                time.sleep(settings.MONITOR_INTERVAL_SECONDS)
        except Exception:
            logger.exception("ops monitor: the database watch failed")
        finally:
            connection.close()


def monitor_singleton(*, ttl: float | None = None, announce=None) -> Singleton:
    ttl = settings.MONITOR_LEASE_TTL_SECONDS if ttl is None else ttl
    singleton = Singleton(services.LEASE, work=lambda epoch: None, ttl=ttl, interval=0.5, announce=announce)
    monitor = Monitor(singleton.holder, announce=singleton.announce)
    watch = DatabaseWatch(singleton.announce)

    def on_step_down(epoch: int, reason: str) -> None:
        if "unreachable" in reason or "database error" in reason:
            watch.start()

    singleton.work = monitor.tick
    singleton.on_step_down = on_step_down
    return singleton
