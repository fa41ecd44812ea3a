"""A trader's display settings: the time zone the pages show times in and the theme.

The API and the websocket streams stay in UTC (``trading.formatting.utc_string``); only what
a person reads on a page is shown in their zone, always with the zone named.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.db import transaction

from trading.errors import ValidationFailed

from .models import Theme, User

DEFAULT_TIME_ZONE = "UTC"


def zone_for(name: str | None) -> ZoneInfo:
    """The zone named ``name``, UTC when it is unset or no longer known."""
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def time_zone_check(name) -> str:
    """An IANA zone name (``Europe/Paris``, ``UTC``) as zoneinfo knows it; anything else is a
    400 naming the field."""
    text = name.strip() if isinstance(name, str) else ""
    # zoneinfo also opens relative paths and "posixrules"-like files: only the listed names count
    if text not in _known_zones():
        raise ValidationFailed(
            f"{text or 'That'} is not a time zone.",
            fields={"timezone": ["An IANA time zone name, e.g. UTC, Europe/London or Asia/Singapore."]},
        )
    return text


def _known_zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {DEFAULT_TIME_ZONE}
    return _ZONES


_ZONES: frozenset[str] | None = None


def time_zone_choices() -> list[str]:
    return sorted(_known_zones())


def user_settings_get(*, user: User) -> dict:
    return {"timezone": user.time_zone or DEFAULT_TIME_ZONE, "theme": user.theme or Theme.DARK}


def user_settings_update(*, user: User, timezone: str | None = None, theme: str | None = None) -> dict:
    """Change what is given; the rest stays."""
    fields = []
    if timezone is not None:
        user.time_zone = time_zone_check(timezone)
        fields.append("time_zone")
    if theme is not None:
        if theme not in Theme.values:
            raise ValidationFailed(f"{theme} is not a theme.", fields={"theme": [f"One of {', '.join(Theme.values)}."]})
        user.theme = theme
        fields.append("theme")
    if fields:
        with transaction.atomic(durable=True):
            User.objects.filter(pk=user.pk).update(**{field: getattr(user, field) for field in fields})
    return user_settings_get(user=user)
