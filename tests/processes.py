"""Helpers for tests that run platform processes (daphne, run_feed, lease contenders)."""

from __future__ import annotations

from urllib.parse import quote


def test_database_url() -> str:
    """The URL of the PostgreSQL database this test process uses (pytest's test database),
    for child processes that must see the same rows."""
    from django.db import connection

    db = connection.settings_dict
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"


test_database_url.__test__ = False  # a helper, not a test
