"""What a round trip costs on the options counter: buy at the ask, sell straight back at the bid.

For BTC calls at an index of 65,000 on the simulator's default smile (ATM vol 55 %), per
expiry and moneyness, the cost as a share of what the buy paid, ``(ask - bid) / ask``, under
the vega spread model (``marketdata.pricing.spread`` with the shipped defaults) and under
the flat spread it replaced (3 % of the mark each side, x1.5 inside a week, x2 inside a
day); and how far the bid sits above (or below) intrinsic value. Pure maths: no database.

    .venv/bin/python bench/option_spreads.py [--forward 65000] [--atm-vol 0.55]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from marketdata.pricing import black76_valuation, default_smile  # noqa: E402
from marketdata.pricing.spread import DEFAULTS, counter_prices, round_trip_cost  # noqa: E402

EXPIRIES = (0.5, 1, 7, 30, 90)
MONEYNESS = (("ITM 10 %", 0.90), ("ITM 5 %", 0.95), ("ATM", 1.00), ("OTM 5 %", 1.05), ("OTM 10 %", 1.10))


def flat_half(days: float, base: float = 0.03) -> float:
    return base * (2 if days < 1 else 1.5 if days < 7 else 1)


def row(forward: float, atm_vol: float, days: float, m: float) -> dict:
    strike = forward * m
    years = days / 365.0
    vol = default_smile(atm_vol, years).vol(strike, forward)
    v = black76_valuation("call", forward, strike, years, vol)
    p = counter_prices(
        sign=1.0, forward=forward, strike=strike, price=v.price, vega=v.vega, delta=v.delta, days=days, params=DEFAULTS
    )
    old = flat_half(days)
    intrinsic = max(forward - strike, 0.0)
    return {
        "mark": v.price,
        "new": float(round_trip_cost(p)),
        "old": 2 * old / (1 + old),
        "bid_over_intrinsic": float(p.bid) - intrinsic,
        "old_bid_over_intrinsic": v.price * (1 - old) - intrinsic,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forward", type=float, default=65000.0)
    parser.add_argument("--atm-vol", type=float, default=0.55)
    args = parser.parse_args(argv)
    print(f"BTC calls, index {args.forward:,.0f}, ATM vol {args.atm_vol:.0%}; round trip = (ask - bid) / ask")
    print(f"spread settings: {DEFAULTS}")
    print()
    print("| expiry | strike | mark USDT | round trip now | before | bid − intrinsic now | before |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for days in EXPIRIES:
        for label, m in MONEYNESS:
            r = row(args.forward, args.atm_vol, days, m)
            itm = m < 1
            print(
                f"| {days:g} d | {label} | {r['mark']:,.2f} | {r['new']:.2%} | {r['old']:.2%} | "
                + (f"{r['bid_over_intrinsic']:,.2f} | {r['old_bid_over_intrinsic']:,.2f} |" if itm else "— | — |")
            )


if __name__ == "__main__":
    main()
