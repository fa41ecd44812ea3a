"""What the benchmarks share: their output lines, the machine they ran on, and the guard on
the database they may use."""

from __future__ import annotations

import os
import platform
import secrets
from pathlib import Path
from urllib.parse import urlparse


def machine_lines() -> list[str]:
    """``machine:`` (cores, CPU model, kernel) and ``postgresql:`` (version, commit mode) lines,
    for the database Django is configured with."""
    from django.db import connection

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    with connection.cursor() as cursor:
        cursor.execute("select version(), current_setting('synchronous_commit')")
        version, sync = cursor.fetchone()
    return [
        f"machine:    nproc {os.cpu_count()}, CPU {model}, {platform.system()} {platform.release()}",
        f"postgresql: {version.split(' on ')[0]} (synchronous_commit={sync})",
    ]


def stack_secret() -> None:
    """The platform in stack mode refuses to start without a signing key of its own: a
    benchmark's platform gets a random one, which the processes it starts inherit."""
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))


def log(line: str = "") -> None:
    print(line, flush=True)


def load() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine moves every figure."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def db_params(url: str) -> dict:
    """``host, port, user, password, name`` of a dedicated benchmark database; the platform's
    own and any test database are refused."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name or name in ("trading", "test_trading") or name.startswith("test_"):
        raise SystemExit(f"refusing to use database {name!r}: give a dedicated benchmark database")
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "root",
        "password": parsed.password or "",
        "name": name,
    }


def django_on(database_url: str, redis_url: str, *, fresh: bool = False) -> None:
    """Point Django at a dedicated benchmark database (created if missing; dropped first with
    ``fresh``) in stack mode, set it up and migrate it."""
    params = db_params(database_url)
    stack_secret()
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "trading.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import psycopg
    from psycopg import sql

    connect = {k: params[k] for k in ("host", "port", "user") if params[k]}
    if params["password"]:
        connect["password"] = params["password"]
    with psycopg.connect(dbname="postgres", autocommit=True, **connect) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [params["name"]]).fetchone()
        if exists and fresh:
            print(f"==> dropping database {params['name']}", flush=True)
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(params["name"])))
            exists = None
        if not exists:
            print(f"==> creating database {params['name']}", flush=True)
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(params["name"])))

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
