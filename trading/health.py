"""Liveness and readiness probes. Later subsystems register their own readiness checks."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

_checks: dict[str, Callable[[], dict]] = {}


def readiness_check(name: str):
    """Register ``fn() -> {"ok": bool, ...}`` to be reported by /readyz."""

    def register(fn):
        _checks[name] = fn
        return fn

    return register


@readiness_check("database")
def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


@readiness_check("redis")
def _redis() -> dict:
    if not settings.REDIS_URL:
        return {"ok": True, "mode": "embedded (in-process broker, cache and channel layer)"}
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    results = {}
    for name, check in _checks.items():
        started = time.monotonic()
        try:
            result = check()
        except Exception as exc:  # a probe reports failures, it does not raise them
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        result["ms"] = round((time.monotonic() - started) * 1000, 1)
        results[name] = result
    ready = all(item["ok"] for item in results.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503)
