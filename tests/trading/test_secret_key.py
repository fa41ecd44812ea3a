"""Stack mode refuses to start on an unsafe signing key: a key anyone can read signs
sessions and JWTs for anyone."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from django.utils import timezone

from tests.factories import UserFactory
from trading.settings import EMBEDDED_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
GOOD = "k" * 30 + "-Random-Enough-0123456789"


def manage_check(**env) -> subprocess.CompletedProcess:
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "JWT_SIGNING_KEY", "DJANGO_SETTINGS_MODULE"}
    }
    base.update(DATABASE_URL=os.environ.get("DATABASE_URL") or "postgres://root@127.0.0.1:5432/trading", DEBUG="0")
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "env, why",
    [
        ({}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": EMBEDDED_SECRET_KEY}, "SECRET_KEY is the embedded mode's published demo key"),
        ({"SECRET_KEY": "x" * 49}, "SECRET_KEY is only 49 characters long"),
        ({"SECRET_KEY": GOOD, "JWT_SIGNING_KEY": "short"}, "JWT_SIGNING_KEY is only 5 characters long"),
        ({"SECRET_KEY": GOOD, "DEBUG": "1"}, "SECRET_KEY is not"),  # DEBUG does not excuse it
    ],
)
def test_stack_mode_refuses_an_unsafe_key_with_a_clear_message(env, why):
    if "DEBUG" in env:
        env = {"DEBUG": "1"}
    result = manage_check(**env)
    assert result.returncode != 0
    assert why in result.stderr and "Refusing to start" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.slow
def test_stack_mode_starts_with_a_long_random_key():
    result = manage_check(SECRET_KEY=GOOD)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_a_token_signed_with_the_published_demo_key_is_refused(api):
    victim = UserFactory()
    now = timezone.now()
    forged = jwt.encode(
        {
            "token_type": "access",
            "user_id": str(victim.pk),
            "jti": "forged",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()),
        },
        EMBEDDED_SECRET_KEY,
        algorithm="HS256",
    )
    response = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_invalid"
