"""Option pricing throughput: marketdata.pricing against QuantLib, in the same process.

Four comparisons, each measured per round in interleaved slices (ours, QuantLib, ours, ...,
so both sides see the same load on a shared machine) and reported as the median over the
rounds, with the median of the per-round ratios ours / QuantLib:

1. scalar price + greeks: ``black76_valuation`` (price, delta, gamma, vega, theta from one
   call) against QuantLib's ``BlackCalculator`` built per option and asked the same five
   numbers (value, deltaForward, gammaForward, vega, theta);
2. a chain of 200 strikes, calls and puts (400 options): one ``black76_chain`` call against
   QuantLib looping ``BlackCalculator`` over the 400 options (and our own scalar loop);
3. implied vol, scalar: ``implied_vol`` against QuantLib's ``blackFormulaImpliedStdDev``
   (accuracy 1e-12) and against ``VanillaOption.impliedVolatility`` (the engine-level call,
   accuracy 1e-10, objects built outside the timing);
4. implied vol, vectorised: ``implied_vol_vec`` over the whole set in one call.

The options are a BTC-like set: forward 65000, strikes 0.5x..2x, expiries 1..365 days,
vols from the default SVI smile around 0.55, calls and puts, fixed seed. Each round also
checks the answers agree (max relative difference to the known vols / to QuantLib).

    .venv/bin/python bench/pricing.py [--rounds 7] [--options 2000] [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import QuantLib as ql  # noqa: E402
import scipy  # noqa: E402

from marketdata.pricing import (  # noqa: E402
    black76_chain,
    black76_valuation,
    default_smile,
    implied_vol,
    implied_vol_vec,
)

FORWARD = 65000.0
CHAIN_STRIKES = 200


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _options(n: int, seed: int = 20261201):
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        days = rnd.randint(1, 365)
        t = days / 365.0
        strike = round(FORWARD * math.exp(rnd.uniform(math.log(0.5), math.log(2.0))), -2)
        vol = default_smile(0.55, t).vol(strike, FORWARD)
        kind = rnd.choice(("call", "put"))
        discount = math.exp(-0.03 * t)
        rows.append((kind, strike, days, t, vol, discount))
    return rows


def _pair(ours, theirs, seconds: float, first_ours: bool, slices: int = 10):
    """Run ``ours`` and ``theirs`` (each returns its operation count) in alternating slices
    of seconds/(2*slices) until each has had ``seconds``, so that both see the same load on
    a shared machine. Returns (ours ops/s, theirs ops/s, ours seconds per call)."""
    totals = {True: [0, 0.0, 0], False: [0, 0.0, 0]}  # ops, seconds, calls
    slice_seconds = seconds / slices
    for i in range(2 * slices):
        is_ours = (i % 2 == 0) == first_ours
        fn = ours if is_ours else theirs
        acc = totals[is_ours]
        start = time.perf_counter()
        while True:
            acc[0] += fn()
            acc[2] += 1
            elapsed = time.perf_counter() - start
            if elapsed >= slice_seconds:
                break
        acc[1] += elapsed
    (o_ops, o_sec, o_calls), (t_ops, t_sec, _) = totals[True], totals[False]
    return o_ops / o_sec, t_ops / t_sec, o_sec / o_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--options", type=int, default=2000, help="options in the scalar and IV sets")
    parser.add_argument("--seconds", type=float, default=0.3, help="minimum time per measurement")
    args = parser.parse_args()

    rows = _options(args.options)
    ql_kind = {"call": ql.Option.Call, "put": ql.Option.Put}
    payoffs = [ql.PlainVanillaPayoff(ql_kind[k], s) for k, s, _, _, _, _ in rows]
    std_devs = [v * math.sqrt(t) for _, _, _, t, v, _ in rows]
    valuations = [black76_valuation(k, FORWARD, s, t, v, d) for k, s, _, t, v, d in rows]
    prices = [v.price for v in valuations]

    # chain: 200 strikes around the forward, 30 days, smile vols
    chain_t = 30 / 365.0
    chain_strikes = FORWARD * np.linspace(0.5, 2.0, CHAIN_STRIKES)
    chain_vols = default_smile(0.55, chain_t).vols(chain_strikes, FORWARD)
    chain_discount = math.exp(-0.03 * chain_t)
    chain_list = [(float(k), float(v)) for k, v in zip(chain_strikes, chain_vols)]
    chain_payoffs = [
        (ql.PlainVanillaPayoff(ql.Option.Call, k), ql.PlainVanillaPayoff(ql.Option.Put, k)) for k, _ in chain_list
    ]
    chain_sqrt_t = math.sqrt(chain_t)

    # QuantLib engine-level implied vol: one VanillaOption per option, built once
    today = ql.Date(1, 12, 2026)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    spot_quote = ql.SimpleQuote(FORWARD)
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot_quote),
        ql.YieldTermStructureHandle(ql.FlatForward(today, 0.03, day_count)),  # q = r: forward = spot
        ql.YieldTermStructureHandle(ql.FlatForward(today, 0.03, day_count)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), 0.55, day_count)),
    )
    engine = ql.AnalyticEuropeanEngine(process)
    ql_options = []
    for (_kind, _strike, days, _, _, _), payoff in zip(rows, payoffs):
        option = ql.VanillaOption(payoff, ql.EuropeanExercise(today + days))
        option.setPricingEngine(engine)
        ql_options.append(option)
    iv_subset = max(1, len(rows) // 10)  # the engine call is slow: time a tenth of the set

    kinds_arr = np.array([r[0] for r in rows])
    strikes_arr = np.array([r[1] for r in rows])
    t_arr = np.array([r[3] for r in rows])
    vols_arr = np.array([r[4] for r in rows])
    disc_arr = np.array([r[5] for r in rows])
    prices_arr = np.array(prices)

    def ours_scalar():
        for kind, strike, _, t, vol, discount in rows:
            black76_valuation(kind, FORWARD, strike, t, vol, discount)
        return len(rows)

    def ql_scalar():
        for payoff, sd, (_, _, _, t, _, discount) in zip(payoffs, std_devs, rows):
            c = ql.BlackCalculator(payoff, FORWARD, sd, discount)
            c.value(), c.deltaForward(), c.gammaForward(), c.vega(t), c.theta(FORWARD, t)
        return len(rows)

    def ours_chain():
        black76_chain(FORWARD, chain_strikes, chain_t, chain_vols, chain_discount)
        return 2 * CHAIN_STRIKES

    def ours_chain_loop():
        for strike, vol in chain_list:
            black76_valuation("call", FORWARD, strike, chain_t, vol, chain_discount)
            black76_valuation("put", FORWARD, strike, chain_t, vol, chain_discount)
        return 2 * CHAIN_STRIKES

    def ql_chain():
        for (call, put), (_, vol) in zip(chain_payoffs, chain_list):
            sd = vol * chain_sqrt_t
            for payoff in (call, put):
                c = ql.BlackCalculator(payoff, FORWARD, sd, chain_discount)
                c.value(), c.deltaForward(), c.gammaForward(), c.vega(chain_t), c.theta(FORWARD, chain_t)
        return 2 * CHAIN_STRIKES

    def ours_iv():
        for (kind, strike, _, t, _, discount), price in zip(rows, prices):
            implied_vol(kind, price, FORWARD, strike, t, discount)
        return len(rows)

    def ql_iv():
        for (kind, strike, _, _t, _, discount), price in zip(rows, prices):
            ql.blackFormulaImpliedStdDev(
                ql_kind[kind], strike, FORWARD, price, discount, 0.0, ql.nullDouble(), 1e-12, 100
            )
        return len(rows)

    def ql_iv_engine():
        for option, price in zip(ql_options[:iv_subset], prices[:iv_subset]):
            option.impliedVolatility(price, process, 1e-10, 200, 1e-4, 10.0)
        return iv_subset

    def ours_iv_vec():
        implied_vol_vec(kinds_arr, prices_arr, FORWARD, strikes_arr, t_arr, disc_arr)
        return len(rows)

    # accuracy, once: all solvers against the vols the prices were made from
    ours = np.array([implied_vol(k, p, FORWARD, s, t, d).vol for (k, s, _, t, _, d), p in zip(rows, prices)])
    theirs = np.array(
        [
            ql.blackFormulaImpliedStdDev(ql_kind[k], s, FORWARD, p, d, 0.0, ql.nullDouble(), 1e-12, 100) / math.sqrt(t)
            for (k, s, _, t, _, d), p in zip(rows, prices)
        ]
    )
    engine_ivs = np.array(
        [
            o.impliedVolatility(p, process, 1e-10, 200, 1e-4, 10.0)
            for o, p in zip(ql_options[:iv_subset], prices[:iv_subset])
        ]
    )
    vec = implied_vol_vec(kinds_arr, prices_arr, FORWARD, strikes_arr, t_arr, disc_arr).vol
    ql_check = ql.BlackCalculator(
        ql.PlainVanillaPayoff(ql.Option.Put, chain_list[50][0]),
        FORWARD,
        chain_list[50][1] * chain_sqrt_t,
        chain_discount,
    ).value()
    chain_put = black76_chain(FORWARD, chain_strikes, chain_t, chain_vols, chain_discount).put.price[50]

    def rel(a, b, mask=None):
        mask = np.ones(len(b), dtype=bool) if mask is None else mask[: len(b)]
        return float(np.max(np.abs(a - b)[mask] / b[mask]))

    def reprice(vols):
        return max(
            abs(black76_valuation(k, FORWARD, s, t, float(v), d).price - p)
            for (k, s, _, t, _, d), p, v in zip(rows, prices, vols)
        )

    # a vol is only as determined as the vega allows: judge it where the vega is not tiny
    vega_ok = np.array([v.vega >= 1e-4 * FORWARD for v in valuations])

    measures = [
        ("scalar price+greeks", "options/s", ours_scalar, "QuantLib BlackCalculator", ql_scalar),
        ("chain 200 strikes x C/P (vectorised)", "options/s", ours_chain, "QuantLib BlackCalculator loop", ql_chain),
        (
            "chain 200 strikes x C/P (our scalar loop)",
            "options/s",
            ours_chain_loop,
            "QuantLib BlackCalculator loop",
            ql_chain,
        ),
        ("implied vol, scalar", "solves/s", ours_iv, "QuantLib blackFormulaImpliedStdDev", ql_iv),
        ("implied vol, scalar", "solves/s", ours_iv, "QuantLib VanillaOption.impliedVolatility", ql_iv_engine),
        ("implied vol, vectorised", "solves/s", ours_iv_vec, "QuantLib blackFormulaImpliedStdDev", ql_iv),
    ]

    print(
        f"bench/pricing: {len(rows)} options (chain: {CHAIN_STRIKES} strikes x call/put, 30 days), "
        f"{args.rounds} rounds, >= {args.seconds}s per measurement"
    )
    print(
        f"machine: nproc {os.cpu_count()}, CPU {_cpu_model()!r}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, QuantLib {ql.__version__}"
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"accuracy, IV vs the true vol, max relative where vega >= 1e-4 F per vol point ({vega_ok.sum()} of "
        f"{len(rows)}): ours {rel(ours, vols_arr, vega_ok):.1e}, QuantLib blackFormulaImpliedStdDev "
        f"{rel(theirs, vols_arr, vega_ok):.1e}, QuantLib engine {rel(engine_ivs, vols_arr[:iv_subset], vega_ok):.1e}; "
        f"vectorised vs scalar (all) {rel(vec, ours):.1e}"
    )
    print(
        f"accuracy, re-priced at the solved vol, max |price - input| over all options (USDT): ours "
        f"{reprice(ours):.1e}, QuantLib blackFormulaImpliedStdDev {reprice(theirs):.1e}; "
        f"chain put vs QuantLib, relative {abs(chain_put - ql_check) / ql_check:.1e}"
    )

    results = {i: ([], [], []) for i in range(len(measures))}  # ours/s, theirs/s, ratio per round
    chain_calls = []
    for round_no in range(1, args.rounds + 1):
        line = []
        for i, (_, _, ours_fn, _, theirs_fn) in enumerate(measures):
            ours_rate, theirs_rate, per_call = _pair(ours_fn, theirs_fn, args.seconds, first_ours=bool(round_no % 2))
            results[i][0].append(ours_rate)
            results[i][1].append(theirs_rate)
            results[i][2].append(ours_rate / theirs_rate)
            if i == 1:
                chain_calls.append(per_call)
            line.append(f"{ours_rate / theirs_rate:.2f}x")
        print(f"round {round_no}: ratios {' '.join(line)}", flush=True)

    print()
    print(
        f"{'measurement':42} {'ours (median)':>16} {'QuantLib (median)':>18}  {'ratio':>7} {'(min-max)':>13}  reference"
    )
    for i, (name, unit, _, ref_name, _) in enumerate(measures):
        ours_med = statistics.median(results[i][0])
        ref_med = statistics.median(results[i][1])
        ratios = results[i][2]
        print(
            f"{name:42} {ours_med:>12,.0f} {unit.split('/')[0][:3]}/s {ref_med:>14,.0f} /s  "
            f"{statistics.median(ratios):>6.2f}x {f'({min(ratios):.2f}-{max(ratios):.2f})':>13}  {ref_name}"
        )
    print("ratio = median over the rounds of ours/QuantLib measured in interleaved slices; > 1: ours faster")
    print()
    chain_med = statistics.median(chain_calls)
    print(f"one chain (400 options, price + 4 greeks) in {chain_med * 1e6:,.0f} us = {1 / chain_med:,.0f} chains/s")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
