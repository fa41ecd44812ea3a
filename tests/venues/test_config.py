"""The simulated venue's configuration: SETTLEMENT_VENUE_FAULTS' compact string, and the
mappings SPOT_VENUES give."""

from __future__ import annotations

from decimal import Decimal

import pytest

from venues.simulated import SimulatedVenueConfig


def test_the_documented_example_parses():
    config = SimulatedVenueConfig.parse(
        "timeout=0.2,rate_limit=0.05,ambiguous=0.02,reject=0.01,latency_ms=5,slippage_bps=5,fee_bps=10"
    )
    assert (config.timeout, config.rate_limit, config.ambiguous, config.reject) == (0.2, 0.05, 0.02, 0.01)
    assert (config.latency_ms, config.slippage_bps, config.fee_bps) == (5.0, Decimal(5), Decimal(10))
    assert config.unavailable == config.insufficient_balance == 0.0
    assert config.fault_probability == pytest.approx(0.28)


def test_empty_means_the_defaults():
    for text in ("", "  ", None, ",,"):
        assert SimulatedVenueConfig.parse(text) == SimulatedVenueConfig()
    default = SimulatedVenueConfig()
    assert default.fault_probability == 0 and default.fee_bps == Decimal(10) and default.latency_ms == 0


def test_aliases_spacing_case_and_semicolons():
    config = SimulatedVenueConfig.parse(" 5xx = 0.1 ; Insufficient=0.05, seed=9,fetch_faults=yes, recv_window_ms=1500 ")
    assert (config.unavailable, config.insufficient_balance, config.seed, config.fetch_faults) == (0.1, 0.05, 9, True)
    assert config.recv_window_ms == 1500.0


def test_from_a_mapping_and_from_the_environment():
    assert SimulatedVenueConfig.from_mapping({"timeout": 0.5, "fee_bps": "2.5"}) == SimulatedVenueConfig(
        timeout=0.5, fee_bps=Decimal("2.5")
    )
    env = {"SETTLEMENT_VENUE_FAULTS": "ambiguous=0.3,latency_ms=2"}
    assert SimulatedVenueConfig.from_env(env) == SimulatedVenueConfig(ambiguous=0.3, latency_ms=2.0)
    assert SimulatedVenueConfig.from_env({}) == SimulatedVenueConfig()


def test_to_string_reads_back():
    config = SimulatedVenueConfig(
        timeout=0.2, ambiguous=0.05, latency_ms=3.0, slippage_bps=Decimal(4), seed=5, fetch_faults=True
    )
    text = config.to_string()
    assert "timeout=0.2" in text and "fetch_faults=true" in text
    assert SimulatedVenueConfig.parse(text) == config


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("timeout", "'timeout' is not key=value"),
        ("timeout=", "'timeout=' is not key=value"),
        ("=0.1", "'=0.1' is not key=value"),
        ("timout=0.1", "unknown key 'timout'"),
        ("timeout=abc", "timeout='abc' is not a number"),
        ("timeout=nan", "not a finite number"),
        ("timeout=1.5", "timeout is a probability between 0 and 1"),
        ("reject=-0.1", "reject is a probability between 0 and 1"),
        ("timeout=0.6,ambiguous=0.6", "add up to 1.2, more than 1"),
        ("timeout=0.1,timeout=0.2", "'timeout' is given twice"),
        ("5xx=0.1,unavailable=0.2", "given twice"),
        ("latency_ms=-1", "latency_ms must be at least 0"),
        ("latency_ms=3000,timeout_ms=9000,recv_window_ms=1000", "recv_window_ms must exceed half the latency (1500)"),
        ("timeout_ms=0", "timeout_ms must be positive"),
        ("fee_bps=-5", "fee_bps must be a Decimal between 0 and 10000"),
        ("slippage_bps=10000", "slippage_bps must be a Decimal between 0 and 10000"),
        ("fee_bps=ten", "fee_bps='ten' is not a number"),
        ("seed=1.5", "seed='1.5' is not an integer"),
        ("fetch_faults=maybe", "fetch_faults='maybe' is not a boolean"),
    ],
)
def test_a_bad_string_is_a_clear_value_error(text, mentions):
    with pytest.raises(ValueError) as caught:
        SimulatedVenueConfig.parse(text)
    message = str(caught.value)
    assert mentions in message
    assert message.startswith("SETTLEMENT_VENUE_FAULTS")  # says which setting is wrong


def test_a_book_and_a_fee_as_a_fraction_as_spot_venues_give_them():
    config = SimulatedVenueConfig.from_mapping(
        {
            "offset_bps": "2",
            "spread_bps": "8",
            "step_bps": "4",
            "levels": 10,
            "level_quantity": "0.4",
            "fee": "0.0015",
            "latency_ms": 5,
        }
    )
    assert (config.offset_bps, config.spread_bps, config.levels, config.fee_bps) == (
        Decimal(2),
        Decimal(8),
        10,
        Decimal(15),
    )
    with pytest.raises(ValueError, match="given twice"):
        SimulatedVenueConfig.from_mapping({"fee": "0.001", "fee_bps": "10"})
    for bad, mentions in (
        ({"levels": "-1"}, "levels"),
        ({"tick": "0"}, "tick must be positive"),
        ({"growth": "-1"}, "growth"),
    ):
        with pytest.raises(ValueError, match=mentions):
            SimulatedVenueConfig.from_mapping(bad)


def test_a_non_string_setting_is_refused():
    with pytest.raises(ValueError, match="must be a string"):
        SimulatedVenueConfig.parse(0.2)
