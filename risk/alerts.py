"""Risk alerts: a ``risk_alert`` notification to the trader (and to staff) when their usage of
a limit crosses 80 % or 100 %, and to staff (and the trader concerned) when a trading state
changes.

A crossing is decided from the usage before and after the order or withdrawal that moves
it, in that operation's transaction with the trader's row locked: the alert is written
exactly once per crossing (with the operation, or not at all), and again only after usage
has fallen back below the threshold and crossed it anew. Orders that stay above it say
nothing.
"""

from __future__ import annotations

from decimal import Decimal

from accounts.models import User
from notifications.services import notification_create

from . import core

THRESHOLDS = (100, 80)  # percent of the limit, the highest crossed is the one reported
KIND = "risk_alert"


def crossed(limit: Decimal | None, before: Decimal, after: Decimal) -> int | None:
    """The highest threshold that ``before -> after`` crosses upwards, or None."""
    if not limit or after <= before:
        return None
    for threshold in THRESHOLDS:
        mark = limit * threshold / 100
        if before < mark <= after:
            return threshold
    return None


def _staff():
    return User.objects.filter(is_staff=True, is_active=True).only("id", "email")


def usage_alert(*, user, name: str, target: str, limit, before, after) -> int | None:
    """Alert ``user`` (and staff) if this usage change crosses a threshold of ``name``."""
    threshold = crossed(limit, Decimal(before), Decimal(after))
    if threshold is None:
        return None
    spec = core.LIMITS[name]
    where = "" if target in ("", "account") else f" ({target})"
    title = f"You have used {threshold}% of a limit: {spec.summary}{where}"
    body = (
        f"{core.number(Decimal(after))} of {core.number(Decimal(limit))}. "
        + ("Further orders that add to it will be refused." if threshold == 100 else "")
    ).strip()
    notification_create(user=user, kind=KIND, title=title, body=body)
    for member in _staff():
        if member.pk != user.pk:
            notification_create(
                user=member,
                kind=KIND,
                title=f"{getattr(user, 'email', user.pk)} at {threshold}% of {name}{where}",
                body=body,
            )
    return threshold


def state_alert(*, change: dict, user_id: int | None) -> None:
    """A trading state changed: staff, and the trader when it is their account's."""
    where = "platform-wide" if change["scope"] == core.PLATFORM else f"{change['scope']} {change['target']}"
    title = f"Trading {change['state'].replace('_', '-')} {where}"
    body = f"Was {change['previous'].replace('_', '-')}. Reason: {change['reason']}"
    for member in _staff():
        notification_create(user=member, kind=KIND, title=title, body=body)
    if user_id is not None:
        trader_title = {
            core.ACTIVE: "Trading on your account is active again",
            core.REDUCE_ONLY: "Your account is reduce-only: you can sell and close, not add",
            core.HALTED: "Trading on your account is halted",
        }[change["state"]]
        notification_create(user=User(pk=user_id), kind=KIND, title=trader_title, body=f"Reason: {change['reason']}")
