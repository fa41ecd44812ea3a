"""Browser tests: Debian's Chromium (via Playwright) against a real daphne process.

The server runs as a subprocess on the *test* database, so the tests use
``transactional_db``: what a test writes is committed and visible to daphne, and what
daphne writes is visible to the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.processes import collect_static, test_database_url

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls
# from a thread with a running loop unless told it is fine (the test body is synchronous).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

BASE_DIR = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_DIR = BASE_DIR / "var" / "screenshots"
SERVER_START_TIMEOUT = 60


def _venv_bin(name: str) -> str:
    candidate = BASE_DIR / ".venv" / "bin" / name
    if candidate.exists():
        return str(candidate)
    sibling = Path(sys.executable).with_name(name)
    if sibling.exists():
        return str(sibling)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed in the virtualenv")
    return found


def _database_url() -> str:
    """The URL of the database the test process uses (the test database)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("browser tests need PostgreSQL: a subprocess cannot see the in-memory/SQLite test database")
    return test_database_url()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(**extra: str) -> dict[str, str]:
    from django.conf import settings

    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "trading.settings",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "0",
            "HTTPS": "0",
            "AXES_ENABLED": "1",
            # The wallet page offers the demo faucet only in demo mode.
            "DEMO_MODE": "1",
            "CONN_MAX_AGE": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's 'chromium' package to run the browser tests")
    return CHROMIUM


@pytest.fixture(scope="session")
def collected_static(chromium_path, django_db_setup, django_db_blocker) -> Path:
    """Run collectstatic once (DEBUG=0 serves the hashed manifest files through whitenoise)."""
    with django_db_blocker.unblock():
        env = _server_env()
    return collect_static(env)


@pytest.fixture
def live_server_env() -> dict[str, str]:
    """Extra environment for the daphne process (a module overrides this fixture to
    configure the server, e.g. its OIDC_PROVIDERS)."""
    return {}


@pytest.fixture
def live_server_url(transactional_db, collected_static, tmp_path, live_server_env) -> str:
    """A daphne process serving the project on the test database; yields its base URL."""
    port = _free_port()
    log_path = tmp_path / "daphne.log"
    env = _server_env(MEDIA_ROOT=str(tmp_path / "media"), **live_server_env)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [_venv_bin("daphne"), "-b", "127.0.0.1", "-p", str(port), "trading.asgi:application"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"daphne exited with {process.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"daphne did not answer /healthz in {SERVER_START_TIMEOUT}s:\n"
                    f"{log_path.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        # Surface server-side tracebacks in the test report (pytest shows captured output on failure).
        server_log = log_path.read_text(errors="replace") if log_path.exists() else ""
        if "Traceback" in server_log:
            sys.stderr.write(f"\n--- daphne log ---\n{server_log[-8000:]}\n")


@pytest.fixture(scope="module")
def browser(chromium_path):
    """One Chromium per test module. Playwright's sync API runs an event loop in this thread
    while it is started, so it must stop before the suite's asyncio tests run."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def context(browser, live_server_url):
    context = browser.new_context(base_url=live_server_url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR
