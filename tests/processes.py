"""Helpers for tests that run platform processes (daphne, run_feed, lease contenders)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]


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


def run_embedded(script, tmp_path, *, timeout: float = 180) -> dict:
    """Run ``script`` as a child process in the embedded mode (a fresh SQLite file, no
    PostgreSQL or Redis, in-process workers) and return the JSON object it prints last."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(SQLITE_PATH=str(tmp_path / "embedded.sqlite3"), EMBEDDED_WORKERS="1", DEBUG="0", HTTPS="0")
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def embedded_setup(index: dict):
    """For an embedded-mode script (``run_embedded``): set Django up on its SQLite file,
    migrate, print ``index`` ({"BTC": Decimal(...)}) and list the instruments."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.utils import timezone

    from marketdata.models import IndexPrint
    from marketdata.services import instruments_sync

    for underlying, price in index.items():
        IndexPrint.objects.create(underlying=underlying, ts=timezone.now(), price=price, sources={})
    instruments_sync(index_prices=index)


class ManagePy:
    """``manage.py <args>`` as a child process with its output in ``log_path``; ``stop()``
    ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, args: list[str], *, env: dict, log_path, cwd):
        import subprocess
        import sys

        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


class Repeat:
    """``with Repeat(fn, every=1.0): ...`` calls ``fn()`` on a thread of its own (its own
    database connection) every ``every`` seconds until the block ends; an error in ``fn``
    stops the loop and fails the block's exit."""

    def __init__(self, fn, *, every: float):
        import threading

        self.fn, self.every = fn, every
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from django.db import connection

        try:
            while not self.stop.is_set():
                self.fn()
                self.stop.wait(self.every)
        except Exception as exc:  # reported by __exit__
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


def collect_static(env: dict) -> Path:
    """``manage.py collectstatic`` as ``make stack`` runs it before the web processes start
    (DEBUG=0 serves the manifest's hashed files through WhiteNoise); answers the folder."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"collectstatic failed:\n{result.stdout}\n{result.stderr}"
    manifest = ROOT / "var" / "staticfiles" / "staticfiles.json"
    assert manifest.exists(), "collectstatic wrote no manifest"
    return manifest.parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Child:
    """A child process in its own session, so ``kill9`` takes its whole process group (a
    prefork worker's children die with it, as in a real crash); its output goes to
    ``<log_dir>/<name>.log`` and to ``lines`` (the first ``keep_lines`` of them, if given)."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir, *, keep_lines: int | None = None):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.keep_lines = keep_lines
        self.lines: list[str] = []
        self.proc = None

    def start(self) -> Child:
        import subprocess
        import threading

        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        proc = self.proc

        def pump():
            for line in proc.stdout:
                if self.keep_lines is None or len(self.lines) < self.keep_lines:
                    self.lines.append(line)
                log.write(line)
                log.flush()
            log.close()

        threading.Thread(target=pump, daemon=True).start()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        import os
        import signal

        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.alive:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def wait_for(self, text: str, timeout: float = 30.0) -> float:
        """Seconds until a line containing ``text`` came out."""
        import time

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if any(text in line for line in self.lines):
                return time.monotonic() - started
            if not self.alive:
                raise AssertionError(f"{self.name} exited:\n{''.join(self.lines[-40:])}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name} never printed {text!r}:\n{''.join(self.lines[-40:])}")


def pytest_on_sqlite(tmp_path, *args: str, timeout: float = 300):
    """Run pytest with ``args`` in a child process on a SQLite file database (the embedded
    mode's database), and fail unless every selected test passed. ``SQLITE_ONLY`` is set in
    the child, so a test can tell it is the SQLite run."""
    import os
    import re
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        SQLITE_TEST_DB=str(tmp_path / "test.sqlite3"), SQLITE_PATH=str(tmp_path / "unused.sqlite3"), SQLITE_ONLY="1"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--ds", "tests.sqlite_settings", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert re.search(r"\d+ passed", result.stdout) and " failed" not in result.stdout, result.stdout[-3000:]
    return result
