"""README's Notifications section and docs/notifications.md name every kind (with its finer
event names), every channel and every setting of the notifications and price alerts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from notifications import kinds

ROOT = Path(__file__).resolve().parents[2]
MAIL_SETTINGS = [
    "EMAIL_BACKEND",
    "ANYMAIL",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "EMAIL_TIMEOUT",
    "EMAIL_FILE_PATH",
    "DEFAULT_FROM_EMAIL",
]


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return re.search(r"^## Notifications\n(.*?)^## ", text, re.S | re.M).group(1)


def guide() -> str:
    return (ROOT / "docs" / "notifications.md").read_text()


def own_settings() -> list[str]:
    return sorted(n for n in dir(settings) if n.startswith(("NOTIFICATIONS_", "PRICE_ALERTS_")))


@pytest.mark.parametrize("where", ["README.md", "docs/notifications.md"])
def test_every_kind_channel_and_setting_is_named(where):
    text = readme_section() if where == "README.md" else guide()
    names = [*kinds.KINDS, *kinds.EVENT_KINDS, *own_settings(), *MAIL_SETTINGS]
    assert len(own_settings()) >= 9
    missing = [name for name in names if f"`{name}`" not in text]
    assert missing == []
    channels = {"in_app": "in-app", "email": "email", "webhook": "webhook"}
    assert set(channels) == set(kinds.CHANNELS)
    assert [c for c in channels.values() if c not in text.lower()] == []
