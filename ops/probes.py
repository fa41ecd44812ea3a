"""The monitor's probes. Each answers ``(ok, detail)`` and is given
``MONITOR_PROBE_TIMEOUT_SECONDS`` (2 s) by the monitor; the readiness functions of
``/readyz`` are reused where they exist.

Which probes there are depends on the settings: one per web URL (``MONITOR_WEB_URLS``)
and one per spot symbol's engine; ``MONITOR_CHECKS`` keeps only the named ones (all when empty).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from trading import health

Probe = Callable[[], tuple[bool, dict]]
# A heartbeat is not missed before beat had the time to send one: the grace runs from this
# process's first beat probe (the monitor's first round), not from the import of this module,
# which the metrics' collectors do when the process starts, maybe long before.
_STARTED: datetime | None = None


def _readiness(name: str) -> dict:
    return health._checks[name]()


def database() -> tuple[bool, dict]:
    result = _readiness("database")
    return bool(result["ok"]), result


def redis() -> tuple[bool, dict]:
    result = _readiness("redis")
    return bool(result["ok"]), result


def web(url: str) -> Probe:
    """The web process answers ``/readyz`` (200 or 503: it serves; the dependencies its
    report names have checks of their own)."""

    def probe() -> tuple[bool, dict]:
        target = url.rstrip("/") + "/readyz"
        try:
            with urllib.request.urlopen(target, timeout=settings.MONITOR_PROBE_TIMEOUT_SECONDS) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            return False, {"url": target, "error": str(getattr(exc, "reason", exc))}
        try:
            report = json.loads(body or b"{}")
        except ValueError:
            return False, {"url": target, "http_status": status, "error": "not a readiness report"}
        failing = sorted(name for name, check in report.get("checks", {}).items() if not check.get("ok"))
        return status in (200, 503), {"url": target, "http_status": status, "not_ready": failing}

    return probe


def celery() -> tuple[bool, dict]:
    if settings.EMBEDDED:
        return True, {"mode": "embedded (tasks run in-process)"}
    from trading.celery import app

    wanted = settings.MONITOR_CELERY_MIN_WORKERS
    # The broadcast returns as soon as ``wanted`` workers answered; connecting takes some of the 2 s.
    replies = app.control.ping(timeout=max(0.5, settings.MONITOR_PROBE_TIMEOUT_SECONDS - 1.0), limit=wanted)
    workers = sorted(name for reply in replies for name in reply)
    detail = {"workers": workers, "expected": wanted}
    if len(workers) < wanted:
        detail["error"] = f"{len(workers)} of {wanted} worker(s) answered the ping"
    return len(workers) >= wanted, detail


def beat() -> tuple[bool, dict]:
    from .models import Heartbeat

    at = Heartbeat.objects.filter(name="beat").values_list("at", flat=True).first()
    limit = settings.MONITOR_BEAT_MAX_AGE_SECONDS
    if at is None:
        global _STARTED
        _STARTED = _STARTED or timezone.now()
        waited = (timezone.now() - _STARTED).total_seconds()
        if waited < limit:
            return True, {"last_run": None, "waiting_seconds": round(waited, 1), "max_age_seconds": limit}
        return False, {"error": "beat's heartbeat task never ran", "max_age_seconds": limit}
    age = (timezone.now() - at).total_seconds()
    return age <= limit, {"last_run": at.isoformat(), "age_seconds": round(age, 1), "max_age_seconds": limit}


BACKLOG_CAP = 10_000


def relay() -> tuple[bool, dict]:
    from settlement.relay import LEASE as RELAY
    from trading.leases import checkpoint_load

    result = _readiness("relay")
    result["cursor"] = checkpoint_load(RELAY, {})
    ok = bool(result["ok"]) and bool(result.get("leader"))
    if not result.get("leader"):
        result["error"] = "no relay holds the lease"
    from trading.outbox import outbox_after

    # the events after the relay's cursor, counted up to BACKLOG_CAP (the age above is what alerts)
    cursor = result.get("cursor") or {}
    mark = cursor if isinstance(cursor, dict) else {}
    waiting = outbox_after(txid=int(mark.get("txid", 0)), event_id=int(mark.get("id", 0)), limit=BACKLOG_CAP)
    result["backlog"] = len(waiting)
    result.pop("cursor", None)
    return ok, result


def engine(symbol: str) -> Probe:
    def probe() -> tuple[bool, dict]:
        result = _readiness("engine")["symbols"][symbol]
        waited = result["oldest_waiting_seconds"]
        limit = settings.ENGINE_READY_MAX_BACKLOG_SECONDS
        ok = bool(result["leader"]) and waited <= limit
        if not result["leader"]:
            result["error"] = "no engine runner holds the lease"
        elif waited > limit:
            result["error"] = f"the oldest waiting order has waited {waited:.0f}s (> {limit:g}s)"
        return ok, result

    return probe


def feed() -> tuple[bool, dict]:
    from marketdata.feed_runner import LEASE
    from marketdata.models import IndexPrint
    from marketdata.services import UNDERLYINGS
    from trading.models import Lease

    now = timezone.now()
    lease = Lease.objects.filter(name=LEASE).values("holder", "expires_at").first()
    leading = bool(lease and lease["holder"] and lease["expires_at"] > now)
    # a stale mark (every source stale) is no price: the age is the last real print's
    latest = dict(IndexPrint.objects.filter(stale=False).values_list("underlying").annotate(at=Max("ts")))
    limit = settings.INDEX_MAX_AGE_SECONDS
    ages = {underlying: round((now - at).total_seconds(), 1) for underlying, at in latest.items()}
    stale = {underlying for underlying, age in ages.items() if age > limit}
    # ... and a feed that writes stale marks is refusing option quotes now, not once the last
    # real price has aged past the limit: its latest print says so, with the sources' reasons
    marks = {}
    for underlying in UNDERLYINGS:
        last = IndexPrint.objects.filter(underlying=underlying).order_by("-ts").values("stale", "sources").first()
        if last and last["stale"]:
            marks[underlying] = (last["sources"] or {}).get("excluded", {})
    stale = sorted(stale | set(marks))
    detail = {"leader": lease["holder"] if leading else None, "age_seconds": ages, "max_age_seconds": limit}
    if marks:
        detail["stale_sources"] = marks
    if not leading:
        detail["error"] = "no feed holds the lease"
    elif not ages and not stale:
        detail["error"] = "no index print yet"
    elif stale:
        detail["error"] = f"stale index: {', '.join(stale)} (its sources are unreachable or stale)"
    return "error" not in detail, detail


def marketmaker() -> tuple[bool, dict]:
    from orders.models import LIVE_STATUSES, SpotOrder
    from orders.spot.marketmaker import LEASE, market_maker_user
    from trading.models import Lease

    user = market_maker_user()
    if user is None:
        return True, {"mode": "no market maker user: not quoting by design"}
    lease = Lease.objects.filter(name=LEASE).values("holder", "expires_at").first()
    leading = bool(lease and lease["holder"] and lease["expires_at"] > timezone.now())
    # Its live quotes, as the market maker counts them: a quote entered while its engine
    # restarts waits there as ``new`` (the engine's own check says when one is down).
    quoting = set(
        SpotOrder.objects.filter(user=user, status__in=LIVE_STATUSES).values_list("symbol", flat=True).distinct()
    )
    missing = [symbol for symbol in settings.MARKET_MAKER_SYMBOLS if symbol not in quoting]
    detail = {"leader": lease["holder"] if leading else None, "quoting": sorted(quoting), "not_quoting": missing}
    if not leading:
        detail["error"] = "no market maker holds the lease"
    elif missing:
        detail["error"] = f"no quotes on {', '.join(missing)}"
    return leading and not missing, detail


def settlement() -> tuple[bool, dict]:
    from settlement.models import ACTIVE_STATES, Settlement, State

    stuck_after = settings.MONITOR_SETTLEMENT_STUCK_SECONDS
    stuck = Settlement.objects.filter(
        state__in=ACTIVE_STATES, updated_at__lt=timezone.now() - timedelta(seconds=stuck_after)
    ).count()
    review = Settlement.objects.filter(state=State.MANUAL_REVIEW).count()
    review_max = settings.MONITOR_SETTLEMENT_REVIEW_MAX
    detail = {"stuck": stuck, "stuck_after_seconds": stuck_after, "manual_review": review, "review_max": review_max}
    problems = []
    if stuck:
        problems.append(f"{stuck} settlement(s) idle in a step for over {stuck_after:g}s")
    if review > review_max:
        problems.append(f"{review} settlement(s) in manual review (> {review_max})")
    if problems:
        detail["error"] = "; ".join(problems)
    return not problems, detail


def venues() -> tuple[bool, dict]:
    from venues.config import routing_venue_names, settlement_venue, venue_get

    detail, ok = {}, True
    try:
        settlement_venue().balances()
        detail["settlement"] = "ok"
    except Exception as exc:
        ok, detail["settlement"] = False, f"{type(exc).__name__}: {exc}"
    for name in routing_venue_names():
        try:
            venue_get(name).order_book("BTC-USDT", depth=1)
            detail[name] = "ok"
        except Exception as exc:
            ok, detail[name] = False, f"{type(exc).__name__}: {exc}"
    return ok, detail


def all_probes() -> dict[str, Probe]:
    """Every check by name, as the settings configure them."""
    from marketdata.services import SPOT_MARKETS

    probes: dict[str, Probe] = {"database": database, "redis": redis}
    for url in settings.MONITOR_WEB_URLS:
        probes[f"web:{url}"] = web(url)
    probes.update(celery=celery, beat=beat, relay=relay)
    for symbol in SPOT_MARKETS:
        probes[f"engine:{symbol}"] = engine(symbol)
    probes.update(feed=feed, marketmaker=marketmaker, settlement=settlement, venues=venues)
    wanted = set(settings.MONITOR_CHECKS)
    if wanted:
        probes = {name: probe for name, probe in probes.items() if name in wanted or name.split(":")[0] in wanted}
    return probes
