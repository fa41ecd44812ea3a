"""Setting limits and states in tests the way staff do: an override row, seen at once."""

from __future__ import annotations

from decimal import Decimal

from risk import selectors
from risk.models import RiskLimit


def limit_set(name: str, value, *, target: str = "", tier: int | None = None, user=None) -> RiskLimit:
    row, _ = RiskLimit.objects.update_or_create(
        name=name, target=target, tier=tier, user=user, defaults={"value": Decimal(str(value))}
    )
    selectors.cache_clear()  # the admin's save clears it on commit; a test's transaction never commits
    return row
