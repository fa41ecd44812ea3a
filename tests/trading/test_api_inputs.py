"""Query strings read by input serializers (trading.api): absent and blank are the default,
values are typed, and a refusal is the platform's validation_error naming the parameter,
the first bad parameter in the serializer's order answering."""

from datetime import UTC, datetime

import pytest
from django.http import QueryDict
from rest_framework import serializers

from trading.api import ChoiceParam, FlagParam, IntParam, TextParam, TimeParam, parse_time
from trading.errors import ValidationFailed
from trading.money import check_asset


class Query(serializers.Serializer):
    start = TimeParam()
    limit = IntParam(default=50, low=1, high=500)
    status = ChoiceParam(["open", "closed"], default="open")
    underlying = ChoiceParam(["BTC", "ETH"], case_insensitive=True, message="Unknown underlying.", hint="BTC or ETH")
    asset = ChoiceParam(["USDT", "BTC"], parse=check_asset)
    symbol = TextParam()
    unread = FlagParam()


def read(query: str) -> dict:
    serializer = Query(data=QueryDict(query))
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def test_absent_and_blank_are_the_defaults():
    with pytest.raises(ValidationFailed) as refused:
        read("")
    assert refused.value.code == "unknown_asset"  # the parser reads a missing asset too, and refuses it
    assert read("asset=btc") == {
        "start": None,
        "limit": 50,
        "status": "open",
        "underlying": None,
        "asset": "BTC",
        "symbol": None,
        "unread": False,
    }
    assert read("asset=BTC&limit=&status=&symbol=&start=")["limit"] == 50


def test_values_are_typed():
    values = read(
        "asset=USDT&start=2026-11-21T09:00:00%2B01:00&limit=7&status=closed&underlying=eth&symbol=BTC-USDT&unread=1"
    )
    assert values == {
        "start": datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
        "limit": 7,
        "status": "closed",
        "underlying": "ETH",
        "asset": "USDT",
        "symbol": "BTC-USDT",
        "unread": True,
    }


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("asset=BTC&limit=0", "limit", "limit must be between 1 and 500."),
        ("asset=BTC&limit=%D9%A3", "limit", "limit must be an integer."),
        ("asset=BTC&status=gone", "status", "status must be one of open, closed."),
        ("asset=BTC&underlying=XRP", "underlying", "Unknown underlying."),
        ("asset=BTC&start=yesterday", "start", "start is not an ISO 8601 time."),
        ("asset=BTC&start=0001-01-01T00:00:00%2B05:00", "start", "start is out of range."),
        ("asset=BTC&start=yesterday&limit=0", "start", "start is not an ISO 8601 time."),  # the first bad one answers
    ],
)
def test_a_refusal_names_the_parameter(query, field, message):
    with pytest.raises(ValidationFailed) as refused:
        read(query)
    assert (refused.value.code, refused.value.message, list(refused.value.fields)) == (
        "validation_error",
        message,
        [field],
    )


def test_times_arrive_in_utc_whatever_offset_they_were_sent_with():
    assert parse_time("0817-09-02T17:33:50+17:13", field="start") == datetime(817, 9, 2, 0, 20, 50, tzinfo=UTC)
    assert parse_time("1700000000", field="start") == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
