"""Reads of API keys."""

from __future__ import annotations

from .models import ApiKey


def api_keys_of(*, user) -> list[ApiKey]:
    """The trader's keys, newest first (revoked ones too, marked so)."""
    return list(ApiKey.objects.filter(user=user).order_by("-id"))
