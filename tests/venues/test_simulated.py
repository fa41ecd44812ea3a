"""The simulated venue in one process: market orders at the reference price, fees, faults and the
order store."""

from __future__ import annotations

import pickle
from decimal import ROUND_DOWN, ROUND_UP, Decimal

import pytest

from venues.base import (
    Execution,
    VenueError,
    VenueInsufficientBalance,
    VenueRateLimited,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)

from .conftest import REFERENCE, VENUE_REDIS_URL

STORES = ["memory", "redis"]
BTC = Decimal("0.00000001")
USDT = Decimal("0.000001")


# --- fills -----------------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_a_quote_buy_fills_at_the_reference_within_the_slippage_bound_and_pays_the_fee_in_base(make_venue, store):
    venue = make_venue(store=store, slippage_bps="5", fee_bps="10", seed=7)

    order = venue.market_order(client_order_id="stl-1-3", symbol="BTC-USDT", side="buy", quote_amount=Decimal(1000))

    reference = REFERENCE["BTC-USDT"]
    assert order.status == "filled" and order.side == "buy" and order.symbol == "BTC-USDT"
    assert order.amount is None  # nothing asked in base: it spent a quote amount
    assert abs(order.average - reference) <= reference * Decimal("0.0005")
    assert order.average != reference  # seed 7 does move the price
    assert order.filled == (Decimal(1000) / order.average).quantize(BTC, rounding=ROUND_DOWN)
    assert order.cost == (order.filled * order.average).quantize(USDT, rounding=ROUND_UP)
    assert order.cost <= Decimal(1000)
    assert order.fee == (order.filled * Decimal("0.001")).quantize(BTC, rounding=ROUND_UP)
    assert order.fee_asset == "BTC"
    assert order.raw["reference_price"] == str(reference)
    assert order.venue_order_id.startswith("sim-")
    assert venue.fetch_order(client_order_id="stl-1-3", symbol="BTC-USDT") == order


def test_a_sell_of_a_base_amount_receives_quote_net_of_a_quote_fee(make_venue):
    venue = make_venue(fee_bps="10")  # no slippage: the reference price exactly

    order = venue.market_order(client_order_id="stl-2-3", symbol="ETH-USDT", side="sell", amount=Decimal("1.5"))

    assert (order.status, order.amount, order.filled, order.average) == (
        "filled",
        Decimal("1.5"),
        Decimal("1.5"),
        Decimal("3000.00"),
    )
    assert order.cost == Decimal("4500.000000")
    assert (order.fee, order.fee_asset) == (Decimal("4.500000"), "USDT")


def test_quantities_are_kept_to_8_decimals_and_quote_to_6_in_the_venues_favour(make_venue):
    venue = make_venue(fee_bps="7", price_source=lambda symbol: Decimal("33333.33"))

    sold = venue.market_order(client_order_id="q-1", symbol="BTC-USDT", side="sell", amount=Decimal("0.123456789"))
    bought = venue.market_order(client_order_id="q-2", symbol="BTC-USDT", side="buy", amount=Decimal("0.123456789"))

    assert sold.filled == bought.filled == Decimal("0.12345678")  # truncated to the satoshi
    assert sold.cost == Decimal("4115.225588")  # 0.12345678 * 33333.33 = 4115.2255884774: down
    assert bought.cost == Decimal("4115.225589")  # the buyer's cost rounds up
    assert sold.fee == Decimal("2.880658")  # 4115.225588 * 0.0007 = 2.8806579116: up
    assert bought.fee == Decimal("0.00008642")  # 0.12345678 * 0.0007 = 0.000086419746: up


def test_slippage_is_random_both_ways_and_never_beyond_its_bound(make_venue):
    venue = make_venue(slippage_bps="20", seed=1)
    reference = REFERENCE["BTC-USDT"]
    prices = [
        venue.market_order(client_order_id=f"s-{i}", symbol="BTC-USDT", side="buy", amount=Decimal("0.01")).average
        for i in range(200)
    ]
    assert all(abs(price - reference) <= reference * Decimal("0.002") for price in prices)
    assert min(prices) < reference < max(prices)
    assert len(set(prices)) > 100


def test_a_seed_makes_fills_and_faults_reproducible(make_venue):
    def run():
        venue = make_venue(slippage_bps="10", timeout="0.3", seed=42)
        outcomes = []
        for i in range(30):
            try:
                outcomes.append(
                    venue.market_order(
                        client_order_id=f"r-{i}", symbol="BTC-USDT", side="buy", amount=Decimal("0.01")
                    ).average
                )
            except VenueTimeout:
                outcomes.append("timeout")
        return outcomes

    first, second = run(), run()
    assert first == second
    assert "timeout" in first and any(isinstance(x, Decimal) for x in first)


def test_an_order_too_small_to_fill_is_rejected_and_not_recorded(make_venue):
    venue = make_venue()
    with pytest.raises(VenueRejected):
        venue.market_order(client_order_id="tiny", symbol="BTC-USDT", side="buy", quote_amount=Decimal("0.0001"))
    assert venue.total_placed() == 0


def test_without_a_reference_price_the_venue_is_unavailable_and_executes_nothing(make_venue):
    def broken(symbol):
        raise RuntimeError("index feed down")

    for source in (broken, lambda symbol: None, lambda symbol: Decimal(0)):
        venue = make_venue(price_source=source)
        with pytest.raises(VenueUnavailable) as caught:
            venue.market_order(client_order_id="p-1", symbol="BTC-USDT", side="buy", amount=Decimal("0.1"))
        assert caught.value.transient and caught.value.client_order_id == "p-1"
        assert venue.total_placed() == 0


# --- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "code", "transient"),
    [
        ("timeout", VenueTimeout, "venue_timeout", True),
        ("rate_limit", VenueRateLimited, "venue_rate_limited", True),
        ("unavailable", VenueUnavailable, "venue_unavailable", True),
        ("5xx", VenueUnavailable, "venue_unavailable", True),
        ("reject", VenueRejected, "venue_rejected", False),
        ("insufficient_balance", VenueInsufficientBalance, "venue_insufficient_balance", False),
    ],
)
@pytest.mark.parametrize("store", STORES)
def test_each_fault_before_execution_raises_its_error_and_creates_nothing(
    make_venue, store, fault, error, code, transient
):
    venue = make_venue(store=store, **{fault: 1.0})

    with pytest.raises(error) as caught:
        venue.market_order(client_order_id="f-1", symbol="BTC-USDT", side="buy", quote_amount=Decimal(100))

    assert isinstance(caught.value, VenueError)
    assert (caught.value.code, caught.value.transient) == (code, transient)
    assert caught.value.client_order_id == "f-1" and caught.value.venue == "simulated"
    assert venue.fetch_order(client_order_id="f-1", symbol="BTC-USDT") is None
    assert venue.placements("f-1") == 0 and venue.total_placed() == 0


def test_a_rate_limit_says_when_to_come_back(make_venue):
    venue = make_venue(rate_limit=1.0, retry_after_s=2.5)
    with pytest.raises(VenueRateLimited) as caught:
        venue.market_order(client_order_id="rl", symbol="BTC-USDT", side="sell", amount=Decimal("0.1"))
    assert caught.value.retry_after == 2.5


@pytest.mark.parametrize("store", STORES)
def test_an_ambiguous_outcome_times_out_but_leaves_a_filled_order_to_find(make_venue, store):
    venue = make_venue(store=store, ambiguous=1.0)

    with pytest.raises(VenueTimeout) as caught:
        venue.market_order(client_order_id="amb-1", symbol="BTC-USDT", side="buy", quote_amount=Decimal(500))

    assert caught.value.transient and caught.value.code == "venue_timeout"
    found = venue.fetch_order(client_order_id="amb-1", symbol="BTC-USDT")
    assert found is not None and found.status == "filled"
    assert found.cost <= Decimal(500) and found.filled > 0
    assert venue.placements("amb-1") == 1


def test_fault_probabilities_are_honoured_over_many_orders(make_venue):
    venue = make_venue(timeout="0.3", rate_limit="0.2", ambiguous="0.1", seed=3)
    counts = {"ok": 0, "timeout": 0, "rate": 0}
    for i in range(1000):
        try:
            venue.market_order(client_order_id=f"m-{i}", symbol="BTC-USDT", side="buy", amount=Decimal("0.001"))
            counts["ok"] += 1
        except VenueTimeout:
            counts["timeout"] += 1  # timeouts before execution and ambiguous ones
        except VenueRateLimited:
            counts["rate"] += 1
    assert 350 <= counts["timeout"] <= 450  # 0.3 + 0.1
    assert 150 <= counts["rate"] <= 250
    assert 350 <= counts["ok"] <= 450
    # executed: the successes and the ambiguous ones, never the others
    assert counts["ok"] < venue.total_placed() < counts["ok"] + counts["timeout"]


def test_lookups_can_suffer_transient_faults_when_asked(make_venue):
    quiet = make_venue(timeout=1.0)
    assert quiet.fetch_order(client_order_id="x", symbol="BTC-USDT") is None  # off by default

    for fault, error in (
        ("timeout", VenueTimeout),
        ("rate_limit", VenueRateLimited),
        ("unavailable", VenueUnavailable),
    ):
        venue = make_venue(fetch_faults="true", **{fault: 1.0})
        with pytest.raises(error):
            venue.fetch_order(client_order_id="x", symbol="BTC-USDT")
    rejecting = make_venue(fetch_faults=True, reject=1.0)  # refusals are for orders only
    assert rejecting.fetch_order(client_order_id="x", symbol="BTC-USDT") is None


def test_latency_is_half_before_and_half_after_execution(make_venue):
    pauses = []
    venue = make_venue(latency_ms=40, sleep=pauses.append)
    venue.market_order(client_order_id="lat", symbol="BTC-USDT", side="buy", amount=Decimal("0.01"))
    assert pauses == [0.02, 0.02]
    venue.fetch_order(client_order_id="lat", symbol="BTC-USDT")
    assert pauses == [0.02, 0.02, 0.04]


def test_latency_really_sleeps(make_venue):
    import time

    venue = make_venue(latency_ms=60)
    started = time.monotonic()
    venue.market_order(client_order_id="slow", symbol="BTC-USDT", side="buy", amount=Decimal("0.01"))
    assert time.monotonic() - started >= 0.06


def test_a_request_executing_outside_its_receive_window_is_refused(make_venue):
    import time

    def stalled_index(symbol):
        time.sleep(0.15)  # the sender stalls between sending and execution
        return Decimal(50000)

    venue = make_venue(recv_window_ms=100, price_source=stalled_index)
    assert venue.unknown_outcome_grace_s == pytest.approx(0.1 + 1.0)
    with pytest.raises(VenueUnavailable):
        venue.market_order(client_order_id="late", symbol="BTC-USDT", side="buy", amount=Decimal("0.01"))
    assert venue.placements("late") == 0


# --- the store -------------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_the_same_client_order_id_executes_twice_and_is_counted(make_venue, store):
    venue = make_venue(store=store)
    first = venue.market_order(client_order_id="dup-1", symbol="BTC-USDT", side="buy", quote_amount=Decimal(100))
    second = venue.market_order(client_order_id="dup-1", symbol="BTC-USDT", side="buy", quote_amount=Decimal(100))
    venue.market_order(client_order_id="single", symbol="BTC-USDT", side="buy", quote_amount=Decimal(100))

    assert first.venue_order_id != second.venue_order_id  # two executions, as on a real venue
    assert venue.placements("dup-1") == 2 and venue.placements("single") == 1 and venue.placements("never") == 0
    assert venue.duplicate_client_order_ids() == ["dup-1"]
    assert venue.total_placed() == 3
    assert [o.venue_order_id for o in venue.orders()] == [
        first.venue_order_id,
        second.venue_order_id,
        venue.orders()[2].venue_order_id,
    ]
    assert venue.fetch_order(client_order_id="dup-1", symbol="BTC-USDT").venue_order_id == first.venue_order_id


@pytest.mark.parametrize("store", STORES)
def test_lookups_of_unknown_ids_or_another_symbol_find_nothing(make_venue, store):
    venue = make_venue(store=store)
    venue.market_order(client_order_id="sym-1", symbol="BTC-USDT", side="buy", amount=Decimal("0.01"))
    assert venue.fetch_order(client_order_id="nope", symbol="BTC-USDT") is None
    assert venue.fetch_order(client_order_id="sym-1", symbol="ETH-USDT") is None  # ids are per symbol
    assert venue.fetch_order(client_order_id="sym-1", symbol="BTC-USDT") is not None


def test_the_redis_store_keeps_a_hash_per_client_id_and_a_list_of_every_placement(make_venue, redis_client, key_prefix):
    venue = make_venue(store="redis")
    venue.market_order(client_order_id="k-1", symbol="BTC-USDT", side="buy", amount=Decimal("0.01"))
    venue.market_order(client_order_id="k-1", symbol="BTC-USDT", side="buy", amount=Decimal("0.02"))

    first = Execution.from_json(redis_client.hget(f"{key_prefix}:order:k-1", "order"))
    assert first.amount == Decimal("0.01")  # the first placement stays the answer
    assert int(redis_client.hget(f"{key_prefix}:counts", "k-1")) == 2
    assert [Execution.from_json(p).amount for p in redis_client.lrange(f"{key_prefix}:placements", 0, -1)] == [
        Decimal("0.01"),
        Decimal("0.02"),
    ]


class _CountingRedis:
    """A real client that counts round trips (top-level commands and pipeline executions)."""

    def __init__(self, client):
        self._client = client
        self.round_trips = 0

    def pipeline(self, *args, **kwargs):
        pipe = self._client.pipeline(*args, **kwargs)
        execute = pipe.execute

        def counted():
            self.round_trips += 1
            return execute()

        pipe.execute = counted
        return pipe

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.round_trips += 1
            return attr(*args, **kwargs)

        return counted


def test_a_placement_is_one_redis_round_trip_and_a_lookup_one_more(redis_client, key_prefix):
    from venues.simulated import SimulatedVenue

    counting = _CountingRedis(redis_client)
    venue = SimulatedVenue(price_source=lambda s: Decimal(50000), redis_client=counting, key_prefix=key_prefix)
    try:
        venue.market_order(client_order_id="rt-1", symbol="BTC-USDT", side="buy", amount=Decimal("0.01"))
        assert counting.round_trips == 1
        assert venue.fetch_order(client_order_id="rt-1", symbol="BTC-USDT") is not None
        assert counting.round_trips == 2
    finally:
        venue.reset()


def test_a_redis_failure_while_recording_is_an_unknown_outcome(key_prefix):
    from venues.simulated import SimulatedVenue

    # Nothing listens on port 1: every command fails to connect.
    venue = SimulatedVenue(
        price_source=lambda s: Decimal(50000), redis_url="redis://127.0.0.1:1/0", key_prefix=key_prefix
    )
    with pytest.raises(VenueTimeout):
        venue.market_order(client_order_id="rf-1", symbol="BTC-USDT", side="buy", amount=Decimal("0.01"))
    with pytest.raises(VenueUnavailable):
        venue.fetch_order(client_order_id="rf-1", symbol="BTC-USDT")


def test_reset_removes_this_venues_keys_and_only_those(make_venue, redis_client, key_prefix):
    other = f"{key_prefix}-other:keep"
    redis_client.set(other, "1")
    try:
        venue = make_venue(store="redis")
        venue.market_order(client_order_id="z-1", symbol="BTC-USDT", side="buy", amount=Decimal("0.01"))
        assert list(redis_client.scan_iter(match=key_prefix + ":*"))
        venue.reset()
        assert list(redis_client.scan_iter(match=key_prefix + ":*")) == []
        assert venue.total_placed() == 0 and venue.fetch_order(client_order_id="z-1", symbol="BTC-USDT") is None
        assert redis_client.get(other) == b"1"
    finally:
        redis_client.delete(other)


# --- the contract ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"amount": Decimal(1), "quote_amount": Decimal(1)}, ValueError),
        ({}, ValueError),
        ({"side": "sell", "quote_amount": Decimal(100)}, ValueError),
        ({"side": "hold", "amount": Decimal(1)}, ValueError),
        ({"amount": Decimal(-1)}, ValueError),
        ({"amount": Decimal(0)}, ValueError),
        ({"amount": Decimal("NaN")}, ValueError),
        ({"amount": 0.1}, TypeError),
        ({"client_order_id": "", "amount": Decimal(1)}, ValueError),
        ({"client_order_id": "has space", "amount": Decimal(1)}, ValueError),
        ({"client_order_id": "x" * 37, "amount": Decimal(1)}, ValueError),
        ({"symbol": "BTCUSDT", "amount": Decimal(1)}, ValueError),
    ],
)
def test_a_call_breaking_the_contract_is_a_programming_error_not_a_venue_error(make_venue, kwargs, error):
    venue = make_venue()
    call = {"client_order_id": "c-1", "symbol": "BTC-USDT", "side": "buy", **kwargs}
    with pytest.raises(error):
        venue.market_order(**call)
    assert venue.total_placed() == 0


def test_orders_round_trip_through_json_and_errors_through_pickle():
    order = Execution(
        "c",
        "v",
        "BTC-USDT",
        "buy",
        "filled",
        None,
        Decimal("0.1"),
        Decimal(5000),
        Decimal(50000),
        Decimal("0.0001"),
        "BTC",
        {"a": 1},
    )
    assert Execution.from_json(order.to_json()) == order
    assert (order.base_asset, order.quote_asset, order.is_final) == ("BTC", "USDT", True)
    with pytest.raises(ValueError):
        Execution("c", "v", "BTC-USDT", "buy", "done", None, Decimal(0), Decimal(0), None, Decimal(0), "")
    with pytest.raises(TypeError):
        Execution("c", "v", "BTC-USDT", "buy", "open", None, 0.1, Decimal(0), None, Decimal(0), "")

    error = pickle.loads(
        pickle.dumps(VenueRateLimited("slow down", retry_after=3.0, venue="simulated", client_order_id="c"))
    )
    assert isinstance(error, VenueRateLimited)
    assert (str(error), error.retry_after, error.venue, error.client_order_id, error.code) == (
        "slow down",
        3.0,
        "simulated",
        "c",
        "venue_rate_limited",
    )


# --- one venue for both callers ---------------------------------------------------------------


def test_ccxts_form_of_a_symbol_is_accepted_and_answered_in_the_platforms(make_venue):
    venue = make_venue()
    order = venue.market_order(client_order_id="form-1", symbol="BTC/USDT", side="buy", amount=Decimal("0.01"))
    assert order.symbol == "BTC-USDT" and order.average == REFERENCE["BTC-USDT"]
    assert venue.fetch_order(client_order_id="form-1", symbol="BTC-USDT") == order


def test_a_latency_beyond_the_callers_timeout_is_a_timeout_after_execution(make_venue):
    venue = make_venue(latency_ms=100, timeout_ms=50, sleep=lambda seconds: None)
    with pytest.raises(VenueTimeout):
        venue.market_order(client_order_id="late-reply", symbol="BTC-USDT", side="buy", amount=Decimal("0.01"))
    assert venue.placements("late-reply") == 1  # it executed: a lookup finds it


@pytest.mark.parametrize("store", STORES)
def test_balances_are_the_net_flows_of_what_executed(make_venue, store):
    venue = make_venue(store=store, fee_bps="10")
    assert venue.balances() == {}
    venue.market_order(client_order_id="b-1", symbol="BTC-USDT", side="buy", quote_amount=Decimal(1000))
    venue.market_order(client_order_id="b-2", symbol="BTC-USDT", side="sell", amount=Decimal("0.01"))
    # bought 0.02 BTC for 1000 USDT (fee 0.00002 BTC), sold 0.01 BTC for 500 USDT (fee 0.5 USDT)
    assert venue.balances() == {"BTC": Decimal("0.00998"), "USDT": Decimal("-500.5")}


def test_orders_recorded_before_the_venues_became_one_are_still_found(redis_client, key_prefix):
    """A routing venue kept each order as a plain string (``quantity``, a final partial fill as
    ``partially_filled``); settlement's venue wrote an unknown fee as "0" with no asset."""
    import json

    from venues.simulated import SimulatedVenue

    redis_client.set(
        f"{key_prefix}:order:sor-1-simx",
        json.dumps(
            {
                "client_order_id": "sor-1-simx",
                "venue_order_id": "ab12",
                "symbol": "BTC-USDT",
                "side": "sell",
                "status": "partially_filled",
                "quantity": "1.5",
                "filled": "1.0",
                "cost": "64935.000000",
                "fee": "64.935",
                "fee_asset": "USDT",
            }
        ),
    )
    redis_client.hset(
        f"{key_prefix}:order:stl-9-3",
        "order",
        json.dumps(
            {
                "client_order_id": "stl-9-3",
                "venue_order_id": "3397148653",
                "symbol": "BTC/USDT",
                "side": "buy",
                "status": "filled",
                "amount": None,
                "filled": "0.02",
                "cost": "1000",
                "average": "50000",
                "fee": "0",
                "fee_asset": "",
                "raw": {},
            }
        ),
    )
    venue = SimulatedVenue(price_source=lambda s: Decimal(50000), redis_url=VENUE_REDIS_URL, key_prefix=key_prefix)
    try:
        routed = venue.fetch_order(client_order_id="sor-1-simx", symbol="BTC-USDT")
        assert (routed.status, routed.amount, routed.filled, routed.fee) == (
            "cancelled",
            Decimal("1.5"),
            Decimal("1.0"),
            Decimal("64.935"),
        )
        settled = venue.fetch_order(client_order_id="stl-9-3", symbol="BTC-USDT")
        assert (settled.symbol, settled.filled, settled.fee, settled.fee_asset) == (
            "BTC-USDT",
            Decimal("0.02"),
            None,
            "",
        )
    finally:
        venue.reset()


def test_hundreds_of_calls_at_once_each_get_a_store_connection(make_venue):
    """A venue process sends a whole batch at once (SETTLEMENT_VENUE_CONCURRENCY threads):
    no call may fail for want of a connection to the store."""
    from concurrent.futures import ThreadPoolExecutor

    venue = make_venue(store="redis", latency_ms=100)

    def place(i):
        return venue.market_order(client_order_id=f"many-{i}", symbol="BTC-USDT", side="buy", amount=Decimal("0.001"))

    with ThreadPoolExecutor(max_workers=150) as pool:
        orders = list(pool.map(place, range(150)))
    assert len(orders) == 150 and venue.total_placed() == 150
