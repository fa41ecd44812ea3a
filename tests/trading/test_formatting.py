"""The one way the platform writes decimals and times for clients (trading.formatting), and
the response fields built on it (trading.schema.DecimalString, UtcDateTime)."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone as dj_timezone
from rest_framework import serializers

from trading.formatting import decimal_string, sentence, utc_string
from trading.schema import DecimalString, UtcDateTime


@pytest.mark.parametrize(
    ("value", "kwargs", "text"),
    [
        (Decimal("65000.1200"), {}, "65000.12"),
        (Decimal("1E+2"), {}, "100"),
        (Decimal("0E-8"), {}, "0"),
        (Decimal("-3.50"), {}, "-3.5"),
        (7, {}, "7"),
        (Decimal("0.5"), {"asset": "BTC"}, "0.50000000"),
        (Decimal("1.0000009"), {"asset": "USDT"}, "1.000000"),  # rounded down: never a fraction we do not have
        (Decimal("1234.505"), {"step": Decimal("0.01")}, "1234.50"),  # half-even, as Decimal.quantize
        (Decimal("1234.515"), {"step": Decimal("0.01")}, "1234.52"),
        (None, {}, None),
        (None, {"asset": "USDT"}, None),
    ],
)
def test_decimal_string(value, kwargs, text):
    assert decimal_string(value, **kwargs) == text


def test_decimal_string_refuses_a_float():
    with pytest.raises(TypeError):
        decimal_string(0.1)


def test_utc_string_is_iso_8601_in_utc_with_a_z():
    paris = timezone(timedelta(hours=1))
    assert utc_string(datetime(2026, 12, 25, 9, 0, tzinfo=paris)) == "2026-12-25T08:00:00Z"
    assert utc_string(datetime(2026, 12, 25, 8, 0, 0, 123456, tzinfo=UTC)) == "2026-12-25T08:00:00.123456Z"
    assert utc_string(None) is None


class Out(serializers.Serializer):
    plain = DecimalString()
    fixed = DecimalString(asset="USDT")
    scaled = DecimalString(asset_source="asset")
    stepped = DecimalString(step=Decimal("0.01"), allow_null=True)
    already = DecimalString()
    at = UtcDateTime()


def test_the_response_fields_write_what_the_functions_write():
    row = SimpleNamespace(
        plain=Decimal("2.50"),
        fixed=Decimal("3"),
        scaled=Decimal("0.1"),
        asset="BTC",
        stepped=None,
        already="65010.50",
        at=datetime(2026, 11, 21, 9, 0, tzinfo=timezone(timedelta(hours=1))),
    )
    assert Out(row).data == {
        "plain": "2.5",
        "fixed": "3.000000",
        "scaled": "0.10000000",
        "stepped": None,
        "already": "65010.50",
        "at": "2026-11-21T08:00:00Z",
    }


def test_times_stay_utc_whatever_the_active_time_zone():
    with dj_timezone.override("Asia/Tokyo"):
        assert UtcDateTime().to_representation(datetime(2026, 11, 21, 8, 0, tzinfo=UTC)) == "2026-11-21T08:00:00Z"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Document is blurry", "Document is blurry."),
        ("Document is blurry.", "Document is blurry."),
        ("  Name  does not\nmatch ", "Name does not match."),
        ("Is this you?", "Is this you?"),
        ("", ""),
    ],
)
def test_sentence_ends_typed_text_with_one_full_stop(text, expected):
    assert sentence(text) == expected
