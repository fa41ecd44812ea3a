"""Bench-only settings for ``bench/api.py``: the platform's settings with the URLconf of
``bench/api_urls.py`` (the platform's routes plus the benchmark's floor endpoint). The
server runs with this module for both variants, so the only difference is the endpoint.
The database connections are the platform's (``DB_POOL_SIZE``, as the Procfile's web line
sets it, or ``CONN_MAX_AGE``)."""

from trading.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
