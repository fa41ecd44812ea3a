"""The simulated market: deterministic under a seed, realistic enough to exercise the index."""

import math
import random
import statistics
import time
from decimal import Decimal

import numpy as np
import pytest

from marketdata.feed import (
    DEFAULT_EXCHANGES,
    DEFAULT_UNDERLYINGS,
    OUTLIER,
    ExchangeProfile,
    MarketSimulator,
    SimParams,
    SimulatedExchangeSource,
    Source,
    collect_quotes,
    compute_index,
)
from marketdata.feed.simulator import MAX_BASIS_BP, SECONDS_PER_YEAR

T0 = 1_700_000_000.0


def irregular_times(n, seed=1, start=T0):
    rnd = random.Random(seed)
    t, out = start, []
    for _ in range(n):
        t += rnd.choice([0.5, 1.0, 1.0, 2.0, 7.5])
        out.append(t)
    return out


def run(sim, times, underlyings=("BTC", "ETH")):
    """Every exchange's quote and the true price, per time."""
    sources = sim.sources()
    trace = []
    for t in times:
        for u in underlyings:
            quotes = tuple(s.fetch(u, t) for s in sources)
            trace.append((t, u, sim.true_price(u), quotes))
    return trace


def test_the_default_market():
    sim = MarketSimulator(seed=1)
    assert sim.exchanges == DEFAULT_EXCHANGES == ("sim-alpha", "sim-beta", "sim-gamma", "sim-delta", "sim-epsilon")
    assert sim.underlyings == ("BTC", "ETH")
    assert sim.true_price("BTC") == Decimal("65000.00") and sim.true_price("ETH") == Decimal("3400.00")
    assert DEFAULT_UNDERLYINGS["BTC"].vol == 0.55 and DEFAULT_UNDERLYINGS["ETH"].vol == 0.70
    assert all(isinstance(s, Source) for s in sim.sources())


def test_same_seed_same_times_give_identical_quotes():
    times = irregular_times(3000)
    first = run(MarketSimulator(seed=42, start_time=T0), times)
    second = run(MarketSimulator(seed=42, start_time=T0), times)
    assert first == second
    assert any(q is not None for *_, quotes in first for q in quotes)


def test_a_different_seed_gives_a_different_market():
    times = irregular_times(200)
    first = run(MarketSimulator(seed=42, start_time=T0), times)
    other = run(MarketSimulator(seed=43, start_time=T0), times)
    assert [row[2] for row in first] != [row[2] for row in other]
    assert [row[3] for row in first] != [row[3] for row in other]


def test_the_order_of_fetching_does_not_matter():
    times = irregular_times(500)
    forward = MarketSimulator(seed=5, start_time=T0)
    backward = MarketSimulator(seed=5, start_time=T0)
    for t in times:
        a = {s.name: s.fetch("BTC", t) for s in forward.sources()}
        b = {s.name: s.fetch("BTC", t) for s in reversed(backward.sources())}
        b_eth = [s.fetch("ETH", t) for s in backward.sources()]  # extra reads change nothing
        assert a == b
        assert b_eth == [forward.quote(name, "ETH") for name in forward.exchanges]


def test_the_true_path_does_not_depend_on_the_exchanges():
    times = irregular_times(1000)
    alone = MarketSimulator(seed=9, exchanges=(), start_time=T0)
    crowded = MarketSimulator(seed=9, start_time=T0)
    for t in times:
        alone.advance_to(t)
        crowded.advance_to(t)
        assert alone.true_price_float("BTC") == crowded.true_price_float("BTC")
        assert alone.true_price_float("ETH") == crowded.true_price_float("ETH")


def test_time_never_runs_backwards():
    sim = MarketSimulator(seed=3, start_time=T0)
    sim.advance_to(T0 + 10)
    price, quote = sim.true_price("BTC"), sim.quote("sim-alpha", "BTC")
    sim.advance_to(T0 + 5)
    sim.advance_to(T0 + 10)
    assert sim.now == T0 + 10
    assert (sim.true_price("BTC"), sim.quote("sim-alpha", "BTC")) == (price, quote)


def test_quotes_are_decimal_with_the_mid_inside_the_spread():
    sim = MarketSimulator(seed=11, start_time=T0)
    for t in irregular_times(300):
        for quote in collect_quotes(sim.sources(), "ETH", t).values():
            if quote is None:
                continue
            assert quote.underlying == "ETH" and quote.ts <= t
            assert isinstance(quote.price, Decimal) and quote.price == quote.price.quantize(Decimal("0.01"))
            assert quote.bid < quote.price < quote.ask
            assert (quote.ask - quote.bid) / quote.price < Decimal("0.0004")  # 2 × 0.75 bp, plus rounding


def test_an_unknown_underlying_is_just_missing():
    sim = MarketSimulator(seed=1)
    assert SimulatedExchangeSource(sim, "sim-beta").fetch("DOGE", 1.0) is None
    with pytest.raises(KeyError):
        SimulatedExchangeSource(sim, "sim-nope")


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        MarketSimulator(seed=1, exchanges=("a", "a"))
    with pytest.raises(ValueError):
        MarketSimulator(seed=1, correlation=1.5)
    with pytest.raises(ValueError):
        MarketSimulator(seed=-1)
    with pytest.raises(ValueError):
        SimParams(start=Decimal("100"), vol=-0.1)


def test_realized_volatility_and_correlation_match_the_parameters():
    """90 days of 5-minute steps: annualised realized vol within ±20% of ``vol``."""
    sim = MarketSimulator(seed=2024, exchanges=())
    step = 300.0
    n = int(90 * 86_400 / step)
    logs = np.empty((n + 1, 2))
    logs[0] = [math.log(sim.true_price_float("BTC")), math.log(sim.true_price_float("ETH"))]
    for k in range(1, n + 1):
        sim.advance_to(k * step)
        logs[k] = [math.log(sim.true_price_float("BTC")), math.log(sim.true_price_float("ETH"))]
    returns = np.diff(logs, axis=0)
    realized = returns.std(axis=0, ddof=1) * math.sqrt(SECONDS_PER_YEAR / step)
    for i, u in enumerate(("BTC", "ETH")):
        vol = DEFAULT_UNDERLYINGS[u].vol
        assert 0.8 * vol <= realized[i] <= 1.2 * vol, (u, realized[i])
    assert 0.5 <= np.corrcoef(returns.T)[0, 1] <= 0.85  # 0.75 in the diffusion; jumps are independent


def test_jumps_arrive_at_the_configured_rate_with_the_configured_size():
    params = {"JMP": SimParams(start=Decimal("100"), vol=0.3, jump_intensity_per_day=4.0, jump_std=0.01)}
    sim = MarketSimulator(seed=77, underlyings=params, exchanges=())
    days, step = 90, 300.0
    for k in range(1, int(days * 86_400 / step) + 1):
        sim.advance_to(k * step)
    jumps = sim.jumps("JMP")
    expected = 4.0 * days  # 360, Poisson sd ≈ 19
    assert 0.8 * expected <= len(jumps) <= 1.2 * expected
    assert 0.8 * 0.01 <= statistics.pstdev(size for _, size in jumps) <= 1.2 * 0.01
    assert all(0 < t <= days * 86_400 for t, _ in jumps)


def test_each_exchange_stays_within_a_few_basis_points_of_the_truth_except_bad_prints():
    sim = MarketSimulator(seed=8, start_time=T0)
    noise_cap_bp = MAX_BASIS_BP + 3 * 1.0  # basis plus noise clipped at three sd
    steps = 7_200  # four hours, every 2 s
    fresh = bad = 0
    worst_bp = 0.0
    for k in range(1, steps + 1):
        t = T0 + 2 * k
        sim.advance_to(t)
        for u in sim.underlyings:
            truth = sim.true_price_float(u)
            for name in sim.exchanges:
                state = sim.state(name, u)
                if state.outage is not None:
                    continue
                fresh += 1
                assert state.ts == t
                deviation_bp = abs(state.mid / truth - 1) / 1e-4
                if state.bad_print:
                    bad += 1
                    assert deviation_bp > 250  # a bad print is 3%..10% off, the noise aside
                    continue
                worst_bp = max(worst_bp, deviation_bp)
                assert abs(float(sim.quote(name, u).price) / truth - 1) / 1e-4 <= noise_cap_bp + 0.01
    assert 1 < worst_bp <= noise_cap_bp
    assert fresh > 0.98 * steps * 10
    assert bad > 5


def test_outages_either_silence_an_exchange_or_freeze_its_last_quote():
    busy = ExchangeProfile("sim-flaky", outages_per_day=200, outage_mean_s=30, frozen_share=0.5)
    sim = MarketSimulator(seed=21, exchanges=[busy], start_time=T0)
    source = sim.sources()[0]
    seen = {"down": 0, "frozen": 0}
    previous = None
    for k in range(1, 10_801):  # six hours, every 2 s
        t = T0 + 2 * k
        quote = source.fetch("BTC", t)
        outage = sim.state("sim-flaky", "BTC").outage
        if outage == "down":
            assert quote is None
        elif outage == "frozen":
            assert quote == previous or (quote is None and previous is None)
            if quote is not None:
                assert quote.ts < t
        else:
            assert quote is not None and quote.ts == t
        if outage:
            seen[outage] += 1
        previous = quote
    assert seen["down"] > 100 and seen["frozen"] > 100


def test_the_index_over_simulated_exchanges_tracks_the_truth_and_clips_bad_prints():
    sim = MarketSimulator(seed=31, start_time=T0)
    sources = sim.sources()
    deviations, clipped = [], 0
    for k in range(1, 5_401):  # three hours, every 2 s
        t = T0 + 2 * k
        for u in ("BTC", "ETH"):
            result = compute_index(collect_quotes(sources, u, t), t, underlying=u)
            assert not result.stale
            deviations.append(abs(float(result.price) / sim.true_price_float(u) - 1) / 1e-4)
            for name, why in result.excluded.items():
                if why == OUTLIER:
                    clipped += 1
                    assert sim.state(name, u).bad_print
    deviations.sort()
    assert deviations[int(0.99 * len(deviations))] <= 8
    assert deviations[-1] <= 25
    assert clipped >= 5


def test_a_simulated_exchange_that_goes_silent_makes_the_index_stale():
    quiet = ExchangeProfile("sim-quiet", outages_per_day=86_400 * 100, outage_mean_s=3600, frozen_share=0.0)
    sim = MarketSimulator(seed=1, exchanges=[quiet, "sim-alpha"], start_time=T0)
    t = T0 + 5
    quotes = collect_quotes(sim.sources(), "BTC", t)
    assert quotes["sim-quiet"] is None and quotes["sim-alpha"] is not None
    result = compute_index(quotes, t)
    assert result.stale and result.excluded == {"sim-quiet": "missing", "sim-alpha": "insufficient"}


# --- history -------------------------------------------------------------------------------


def test_history_is_deterministic_and_ends_at_the_live_starting_price():
    sim = MarketSimulator(seed=4, start_time=T0)
    first = sim.history("BTC", T0 - 86_400, T0, 60)
    assert first == MarketSimulator(seed=4, start_time=T0).history("BTC", T0 - 86_400, T0, 60)
    assert first != MarketSimulator(seed=5, start_time=T0).history("BTC", T0 - 86_400, T0, 60)
    assert len(first) == 1441
    assert first[0][0] == T0 - 86_400 and first[-1] == (T0, Decimal("65000.00"))
    assert all(isinstance(p, Decimal) and p > 0 for _, p in first)
    assert [t for t, _ in first] == [T0 - 86_400 + 60 * k for k in range(1441)]
    # the live path is untouched by drawing history
    assert sim.now == T0 and sim.true_price("BTC") == Decimal("65000.00")


def test_history_of_thirty_days_of_minutes_is_quick():
    sim = MarketSimulator(seed=4, start_time=T0)
    started = time.perf_counter()
    points = sim.history("ETH", T0 - 30 * 86_400, T0, 60)
    elapsed = time.perf_counter() - started
    assert len(points) == 30 * 1440 + 1
    assert elapsed < 2.0


def test_history_has_the_configured_volatility():
    sim = MarketSimulator(seed=12, start_time=T0)
    for u in ("BTC", "ETH"):
        prices = np.array([float(p) for _, p in sim.history(u, T0 - 90 * 86_400, T0, 60)])
        realized = np.diff(np.log(prices)).std(ddof=1) * math.sqrt(SECONDS_PER_YEAR / 60)
        vol = DEFAULT_UNDERLYINGS[u].vol
        assert 0.8 * vol <= realized <= 1.2 * vol, (u, realized)


def test_history_before_a_zero_start_time():
    sim = MarketSimulator(seed=4)  # simulated clock starting at 0
    points = sim.history("BTC", -3600, 0, 10)
    assert len(points) == 361 and points[-1] == (0.0, Decimal("65000.00"))
    assert points[0][1] != Decimal("65000.00")


def test_history_cannot_run_past_the_live_start():
    sim = MarketSimulator(seed=4, start_time=T0)
    with pytest.raises(ValueError):
        sim.history("BTC", T0 - 60, T0 + 60, 60)
    with pytest.raises(ValueError):
        sim.history("BTC", T0, T0 - 60, 60)
    with pytest.raises(ValueError):
        sim.history("BTC", T0 - 60, T0, 0)
    with pytest.raises(KeyError):
        sim.history("DOGE", T0 - 60, T0, 60)
