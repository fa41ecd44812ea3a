"""``manage.py check --deploy`` passes with a production-like environment (and can fail)."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# No "$": django-environ would read a leading "$" as a reference to another variable.
KEY_ALPHABET = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"

pytestmark = pytest.mark.slow


def production_env(**overrides) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        # Start from the shell, not from the test run's tweaks of the platform's settings.
        if key in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="trading.settings",
        DEBUG="0",
        SECRET_KEY="".join(secrets.choice(KEY_ALPHABET) for _ in range(64)),
        ALLOWED_HOSTS="trade.example.com",
        HTTPS="1",
    )
    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    env.update(overrides)
    return env


def run_check(env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_in_production_settings():
    result = run_check(production_env())

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues" in output, output


def test_check_deploy_fails_with_debug_on():
    result = run_check(production_env(DEBUG="1"))

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "security.W018" in output, output  # DEBUG must be off in deployment


def test_check_deploy_fails_with_a_weak_secret_key():
    result = run_check(production_env(SECRET_KEY="short"))

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    # refused before any check runs (tests/trading/test_secret_key.py has the cases)
    assert "Refusing to start: SECRET_KEY is only 5 characters long" in output, output
