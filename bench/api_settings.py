"""Bench-only settings for ``bench/api.py``: the platform's settings with the URLconf of
``bench/api_urls.py`` (the platform's routes plus the benchmark's floor endpoint). The
server runs with this module for both variants, so the only difference is the endpoint.

``BENCH_DB_POOL=1`` (``bench/api.py --pool``) swaps Django's per-thread connections for a
psycopg connection pool (Django >= 5.1, package ``psycopg-pool``), to measure what it is
worth: under ASGI every request runs in a new thread, so without a pool each request opens
its own PostgreSQL connection."""

import os

from trading.settings import *  # noqa: F401,F403
from trading.settings import DATABASES

ROOT_URLCONF = "bench.api_urls"

if os.environ.get("BENCH_DB_POOL") == "1":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections (Django refuses both)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(os.environ.get("BENCH_DB_POOL_MIN", "4")),
        "max_size": int(os.environ.get("BENCH_DB_POOL_MAX", "16")),
        "timeout": 10,
    }
