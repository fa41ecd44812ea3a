"""Risk alerts: a ``risk_alert`` notification to the trader (and to staff) when their usage of
a limit crosses 80 % or 100 %, and to staff (and the trader concerned) when a trading state
changes.

A crossing is decided from the usage before and after the order or withdrawal that moves
it, in that operation's transaction with the trader's row locked: the alert is written
exactly once per crossing (with the operation, or not at all), and again only after usage
has fallen back below the threshold and crossed it anew. Orders that stay above it say
nothing.

Each message carries a dedupe key naming what it tells, so the same event told twice is one
message per person: a crossing is ``risk:<limit>:<target>:<threshold>:<trader>:<operation>``
(the operation: the order's ``client_order_id``, the RFQ quote, the option order's client
id or quote, else the database transaction that decided it), a state change
``risk_state:<its audit record>``.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import connection

from accounts.models import User
from notifications.services import Message, notify_many

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


def _staff_ids() -> list[int]:
    return list(User.objects.filter(is_staff=True, is_active=True).order_by("pk").values_list("pk", flat=True))


def current_operation() -> str:
    """The id of the database transaction the caller runs in: the operation, when it has no
    id of its own (a crossing is decided once per transaction that moves the usage)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text")
            return f"tx{cursor.fetchone()[0]}"
    return f"op{uuid.uuid4().hex}"


def usage_alert(*, user, name: str, target: str, limit, before, after, operation: str = "") -> int | None:
    """Alert ``user`` (and staff) if this usage change crosses a threshold of ``name``.
    ``operation``: the id of the order or withdrawal that moves the usage (its client id),
    so the same operation told again is not a second alert."""
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
    key = f"risk:{name}:{target or '-'}:{threshold}:{user.pk}:{operation or current_operation()}"
    data = {
        "limit": name,
        "target": target,
        "threshold": threshold,
        "used": core.number(Decimal(after)),
        "value": core.number(Decimal(limit)),
        "user_id": user.pk,
    }
    messages = [Message(user_id=user.pk, kind=KIND, title=title, body=body, dedupe_key=key, data=data)]
    staff_title = f"{getattr(user, 'email', user.pk)} at {threshold}% of {name}{where}"
    messages += [
        Message(user_id=member, kind=KIND, title=staff_title, body=body, dedupe_key=key, data=data)
        for member in _staff_ids()
        if member != user.pk
    ]
    notify_many(messages)
    return threshold


def state_alert(*, change: dict, user_id: int | None, change_id) -> None:
    """A trading state changed: staff, and the trader when it is their account's.
    ``change_id``: the change's own id (its audit record), the messages' key."""
    where = "platform-wide" if change["scope"] == core.PLATFORM else f"{change['scope']} {change['target']}"
    title = f"Trading {change['state'].replace('_', '-')} {where}"
    body = f"Was {change['previous'].replace('_', '-')}. Reason: {change['reason']}"
    key = f"risk_state:{change_id}"
    data = {
        "scope": change["scope"],
        "target": change["target"],
        "state": change["state"],
        "previous": change["previous"],
        "reason": change["reason"],
    }
    messages = [
        Message(user_id=member, kind=KIND, title=title, body=body, dedupe_key=key, data=data) for member in _staff_ids()
    ]
    if user_id is not None:
        trader_title = {
            core.ACTIVE: "Trading on your account is active again",
            core.REDUCE_ONLY: "Your account is reduce-only: you can sell and close, not add",
            core.HALTED: "Trading on your account is halted",
        }[change["state"]]
        messages.append(
            Message(
                user_id=user_id,
                kind=KIND,
                title=trader_title,
                body=f"Reason: {change['reason']}",
                dedupe_key=key,
                data=data,
            )
        )
    notify_many(messages)
