"""What every app's API views share on the way in: validating a body or the query string with
an input serializer, and the fields of query parameters.

A view validates its input with a serializer (``validated`` for the body, ``validated_query``
for the query string) and passes the typed values to its service or selector; no view hands
``request.data`` or ``request.query_params`` on.

The query parameter fields read an absent parameter as a blank one (the default), and refuse
a bad value with the platform's own ``validation_error`` naming the parameter, from the same
parsers the services use (``trading.money.parse_int``, ``check_asset``, ...): the first bad
parameter answers, in the order the serializer declares them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.fields import empty

from trading.errors import ValidationFailed
from trading.money import parse_int


def validated(serializer_class, request, **kwargs) -> dict:
    """Validate ``request.data`` with ``serializer_class``; bad input raises a 400 validation_error."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def validated_query(serializer_class, request, **kwargs) -> dict:
    """Validate the query string with ``serializer_class`` (of the ``*Param`` fields below)."""
    serializer = serializer_class(data=request.query_params, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class _QueryParam:
    """Absent and blank are the same; the field's ``to_internal_value`` reads both."""

    def run_validation(self, data=empty):
        return self.to_internal_value("" if data is empty or data is None else data)


class IntParam(_QueryParam, serializers.IntegerField):
    """An integer in ASCII digits within [low, high]; blank is the default."""

    def __init__(self, *, default: int, low: int, high: int, **kwargs):
        self.low, self.high = low, high
        super().__init__(default=default, min_value=low, max_value=high, **kwargs)

    def to_internal_value(self, data):
        return parse_int(data, field=self.field_name, default=self.default, low=self.low, high=self.high)


class ChoiceParam(_QueryParam, serializers.ChoiceField):
    """One of ``choices`` (``case_insensitive``: in any case, given back as the choice is
    spelled); blank is the default (or None). A refusal says ``message`` with ``hint`` for the
    field (``{name}``, ``{value!r}`` and ``{choices}`` are filled in). With ``parse``, that
    parser reads every value (blank too) and answers the refusal itself."""

    def __init__(
        self,
        choices,
        *,
        message: str = "{name} must be one of {choices}.",
        hint: str = "One of {choices}.",
        case_insensitive: bool = False,
        parse=None,
        **kwargs,
    ):
        self.message, self.hint, self.case_insensitive, self.parse = message, hint, case_insensitive, parse
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(choices, **kwargs)

    def to_internal_value(self, data):
        if self.parse is not None:
            return self.parse(data)
        if data == "":
            return None if self.default is empty else self.default
        for choice in self.choices:
            if data == choice or (
                self.case_insensitive and isinstance(data, str) and data.upper() == str(choice).upper()
            ):
                return choice
        words = {"name": self.field_name, "value": data, "choices": ", ".join(str(c) for c in self.choices)}
        raise ValidationFailed(self.message.format(**words), fields={self.field_name: [self.hint.format(**words)]})


class TextParam(_QueryParam, serializers.CharField):
    """Text, as sent; blank is None. ``parse`` reads a non-blank value (and refuses it)."""

    def __init__(self, *, parse=None, **kwargs):
        self.parse = parse
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if data == "":
            return None
        return self.parse(data) if self.parse is not None else str(data)


class FlagParam(_QueryParam, serializers.BooleanField):
    """On for ``1``, ``true`` or ``yes``; anything else (or nothing) is off."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return data in {"1", "true", "yes"}


class TimeParam(_QueryParam, serializers.DateTimeField):
    """An ISO 8601 time (UTC when it names no zone) or Unix seconds; blank is None."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return parse_time(data, field=self.field_name) if data != "" else None


def parse_time(raw: str, *, field: str) -> datetime:
    """A time from a query string, in UTC; refusals are validation_error naming ``field``."""
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None and raw.isascii() and raw.isdigit():
        try:
            value = datetime.fromtimestamp(int(raw), tz=UTC)
        except (OverflowError, OSError, ValueError):  # beyond the years datetime can hold
            value = None
    if value is None:
        raise ValidationFailed(
            f"{field} is not an ISO 8601 time.", fields={field: ["Use ISO 8601, e.g. 2026-11-21T08:00:00Z."]}
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        # In UTC: ISO 8601 allows offsets (up to a day) that PostgreSQL refuses beyond 15:59.
        return value.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC
        raise ValidationFailed(
            f"{field} is out of range.", fields={field: ["A time between the years 1 and 9999 (UTC)."]}
        ) from None
