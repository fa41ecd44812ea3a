"""Notification kinds, channels and their default preferences (plain data, no Django).

A notification's ``kind`` is one of ``KINDS``, or a finer event name that belongs to one of
them (``EVENT_KINDS``: ``password_changed`` is a ``security`` notification). Preferences are
kept per kind and channel; what a user never chose falls back to ``KINDS[kind].defaults``.
"""

from __future__ import annotations

from dataclasses import dataclass

IN_APP = "in_app"
EMAIL = "email"
WEBHOOK = "webhook"
CHANNELS = (IN_APP, EMAIL, WEBHOOK)
DELIVERED_CHANNELS = (EMAIL, WEBHOOK)  # the ones sent by a task after the commit


@dataclass(frozen=True)
class Kind:
    summary: str
    email: bool = False  # the default for email; in-app and webhook are on by default
    locked: bool = False  # every channel always on: the user cannot switch it off
    coalesce: bool = False  # events of one subject within a window make one message


KINDS: dict[str, Kind] = {
    "order_filled": Kind("A spot order filled completely"),
    "order_partially_filled": Kind("A spot order traded in part (one message per order per window)", coalesce=True),
    "order_cancelled": Kind("A spot order was cancelled, expired or refused by the engine"),
    "order_triggered": Kind("A stop or trailing-stop order triggered"),
    "order_amended": Kind("A change to an open spot order's price or quantity was applied or refused"),
    "option_filled": Kind("An option order filled"),
    "option_settled": Kind("An option order's hedge settled, or went to manual review", email=True),
    "option_exercised": Kind("An option position was exercised at expiry", email=True),
    "option_expired": Kind("An option position expired worthless", email=True),
    "deposit_credited": Kind("A deposit was credited to your balance", email=True),
    "withdrawal_updated": Kind("A withdrawal was requested, approved, rejected or sent", email=True),
    "kyc": Kind("Identity verification decided", email=True),
    "security": Kind("Sign-in, 2FA, password and API key changes", email=True, locked=True),
    "risk_alert": Kind("A risk limit's usage crossed 80 % or 100 %, or trading state changed", email=True, locked=True),
    "price_alert": Kind("One of your price alerts fired", email=True),
    "digest": Kind("Your daily or weekly portfolio summary", email=True),
    "system": Kind("Messages from the exchange"),
}

# Finer event names already in use, and the kind whose preferences govern them.
EVENT_KINDS: dict[str, str] = {
    "kyc_approved": "kyc",
    "kyc_rejected": "kyc",
    "password_changed": "security",
    "2fa_enabled": "security",
    "2fa_replaced": "security",
    "2fa_disabled": "security",
    "api_key_created": "security",
    "api_key_revoked": "security",
    "sign_in": "security",
    "new_sign_in": "security",
    "withdrawal_address_added": "security",
    "withdrawal_whitelist_changed": "security",
    "order_rejected": "order_cancelled",
    "welcome": "system",
    "ops_alert": "risk_alert",  # the ops monitor's alerts and recoveries, to staff
}


def preference_kind(kind: str) -> str:
    """The kind whose preferences apply to ``kind`` (unknown names count as ``system``)."""
    if kind in KINDS:
        return kind
    return EVENT_KINDS.get(kind, "system")


def default(kind: str, channel: str) -> bool:
    spec = KINDS[preference_kind(kind)]
    if channel == EMAIL:
        return spec.email or spec.locked
    return True


def locked(kind: str) -> bool:
    return KINDS[preference_kind(kind)].locked


def resolve(kind: str, overrides: dict[tuple[str, str], bool]) -> dict[str, bool]:
    """Channel -> on/off for ``kind``, given a user's ``{(kind, channel): enabled}`` choices.
    Locked kinds ignore any stored choice."""
    pkind = preference_kind(kind)
    if KINDS[pkind].locked:
        return dict.fromkeys(CHANNELS, True)
    return {channel: overrides.get((pkind, channel), default(pkind, channel)) for channel in CHANNELS}
