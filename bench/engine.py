"""Matching engine core throughput and latency: orders.spot.engine.OrderBook against a minimal
limit-only dict+deque book written here, on the same command stream, in the same process.

Streams (deterministic seed; prices in ticks around 100,000, quantities 1-100 lots):

* limit-only (both engines): 70% limit adds that do not cross, 20% cancels of a random
  live order, 10% marketable limit orders (priced a few ticks through the opposite best, so
  they sweep one or more levels and rest any remainder). Owners are all distinct, so
  self-trade prevention never fires and both engines must print the same trades: checked;
* full mix (ours only): the same proportions, with icebergs and post-only among the adds,
  stop-market / stop-limit / trailing stops (about 8% of commands), amends, and marketable
  orders that are market (quantity or quote amount), IOC and FOK; 200 owners, so
  self-trade prevention fires too.

Each round runs each engine over its stream on a fresh book seeded with the stream's first
commands (untimed), alternating which engine goes first; figures are medians over the
rounds, the ratio the median of per-round ratios ours / baseline. Latency percentiles come
from a separate pass that times every command with perf_counter_ns (timer overhead
included, printed). The pause measurement seeds 100,000 resting orders and reports the
worst single command with the default GC settings and with ``HotPathGC`` (checkpoint every
1,000 commands, its own pauses reported apart).

    .venv/bin/python bench/engine.py [--quick] [--rounds 7] [--commands 200000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from bisect import bisect_left, insort
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orders.spot.engine import (  # noqa: E402
    BUY,
    FOK,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    STOP_LIMIT,
    STOP_MARKET,
    TRADE,
    TRAILING_STOP,
    HotPathGC,
    OrderBook,
)

MID = 100_000
BATCH = 1000  # commands between drains, like a runner batch

# command codes in the streams
(ADD, CANCEL, TAKE, MARKET_QTY, MARKET_QUOTE, IOC_ADD, FOK_ADD, ICEBERG, POST_ONLY, STOP, STOP_LMT, TRAIL, AMEND) = (
    range(13)
)


class BaselineBook:
    """The minimal limit-only book: dict price -> [deque of [id, qty], live count], a sorted
    key list per side (best last), dict id -> entry, lazy cancels. Fills go to a list."""

    def __init__(self):
        self.bid_keys = []  # prices, ascending: best bid last
        self.ask_keys = []  # -prices, ascending: best ask last
        self.bids = {}
        self.asks = {}
        self.orders = {}  # id -> [id, qty, side, price]
        self.fills = []

    def limit(self, oid, side, price, qty):
        if side == BUY:
            keys, levels, limit_key, sign = self.ask_keys, self.asks, -price, -1
            own_keys, own_levels = self.bid_keys, self.bids
        else:
            keys, levels, limit_key, sign = self.bid_keys, self.bids, price, 1
            own_keys, own_levels = self.ask_keys, self.asks
        fills = self.fills
        orders = self.orders
        while qty and keys and keys[-1] >= limit_key:
            level_price = keys[-1] * sign
            level = levels[level_price]
            queue = level[0]
            while queue:
                maker = queue[0]
                if not maker[1]:
                    queue.popleft()
                    continue
                if maker[1] > qty:
                    maker[1] -= qty
                    fills.append((maker[0], oid, level_price, qty))
                    qty = 0
                    break
                fills.append((maker[0], oid, level_price, maker[1]))
                qty -= maker[1]
                maker[1] = 0
                queue.popleft()
                del orders[maker[0]]
                level[1] -= 1
                if not qty:
                    break
            if not level[1]:
                del levels[level_price]
                keys.pop()
        if qty:
            entry = [oid, qty, side, price]
            orders[oid] = entry
            level = own_levels.get(price)
            if level is None:
                level = own_levels[price] = [deque(), 0]
                insort(own_keys, -sign * price)
            level[0].append(entry)
            level[1] += 1

    def cancel(self, oid):
        entry = self.orders.pop(oid, None)
        if entry is None:
            return False
        entry[1] = 0
        if entry[2] == BUY:
            keys, levels, key = self.bid_keys, self.bids, entry[3]
        else:
            keys, levels, key = self.ask_keys, self.asks, -entry[3]
        level = levels[entry[3]]
        level[1] -= 1
        if not level[1]:
            del levels[entry[3]]
            del keys[bisect_left(keys, key)]
        return True


# ------------------------------------------------------------------------------ streams


class _Live:
    """Random choice among ids that may still be live (filled ones are dropped lazily)."""

    def __init__(self, rnd):
        self.rnd = rnd
        self.ids = []

    def add(self, oid):
        self.ids.append(oid)

    def pick(self, alive):
        ids = self.ids
        while ids:
            i = self.rnd.randrange(len(ids))
            oid = ids[i]
            ids[i] = ids[-1]
            ids.pop()
            if alive(oid):
                return oid
        return None


def _size(rnd):
    return rnd.choice((1, 2, 5, 10, 10, 20, 25, 50, 100)) if rnd.random() < 0.8 else rnd.randint(1, 100)


def _distance(rnd):
    return 1 + min(int(rnd.expovariate(1 / 6)), 200)


def limit_stream(n, seed, seed_orders):
    """(seed commands, timed commands) for the limit-only comparison; generated by running
    the baseline book, which also gives the live ids and best prices."""
    rnd = random.Random(seed)
    book = BaselineBook()
    live = _Live(rnd)
    out = []
    next_id = 1
    for i in range(seed_orders + n):
        bid = book.bid_keys[-1] if book.bid_keys else MID - 1
        ask = -book.ask_keys[-1] if book.ask_keys else MID + 1
        r = rnd.random() if i >= seed_orders else 0.0
        if r < 0.7:
            side = BUY if rnd.random() < 0.5 else SELL
            price = min(MID - _distance(rnd), ask - 1) if side == BUY else max(MID + _distance(rnd), bid + 1)
            cmd = (ADD, next_id, side, price, _size(rnd))
        elif r < 0.9:
            oid = live.pick(book.orders.__contains__)
            if oid is None:
                continue
            cmd = (CANCEL, oid, None, 0, 0)
        else:
            side = BUY if rnd.random() < 0.5 else SELL
            through = rnd.randint(0, 3)
            price = ask + through if side == BUY else bid - through
            cmd = (TAKE, next_id, side, price, rnd.choice((10, 25, 50, 100, 200)))
        if cmd[0] == CANCEL:
            book.cancel(cmd[1])
        else:
            book.limit(cmd[1], cmd[2], cmd[3], cmd[4])
            live.add(next_id)
            next_id += 1
        out.append(cmd)
    return out[:seed_orders], out[seed_orders:]


def full_stream(n, seed, seed_orders, owners=200):
    """The full-feature mix, generated by running our own book (for live ids and prices).
    Commands: (code, id, owner, side, price, qty, extra)."""
    rnd = random.Random(seed)
    book = OrderBook("GEN")
    live = _Live(rnd)
    out = []
    next_id = 1
    for i in range(seed_orders + n):
        bid = book.best_bid() or MID - 1
        ask = book.best_ask() or MID + 1
        owner = rnd.randrange(owners)
        side = BUY if rnd.random() < 0.5 else SELL
        r = rnd.random() if i >= seed_orders else 0.0
        passive = min(MID - _distance(rnd), ask - 1) if side == BUY else max(MID + _distance(rnd), bid + 1)
        if r < 0.55:
            cmd = (ADD, next_id, owner, side, passive, _size(rnd), None)
        elif r < 0.60:
            cmd = (ICEBERG, next_id, owner, side, passive, _size(rnd) * 10, rnd.choice((5, 10, 20)))
        elif r < 0.62:
            cmd = (
                POST_ONLY,
                next_id,
                owner,
                side,
                passive + rnd.choice((0, 0, 0, 3)) * (1 if side == BUY else -1),
                _size(rnd),
                None,
            )
        elif r < 0.65:  # stops away from the last price, on the side that makes them protective
            last = book.last_price or MID
            away = 2 + _distance(rnd)
            stop = last + away if side == BUY else max(1, last - away)
            cmd = (STOP, next_id, owner, side, None, _size(rnd), stop)
        elif r < 0.68:
            last = book.last_price or MID
            away = 2 + _distance(rnd)
            stop = last + away if side == BUY else max(1, last - away)
            limit = stop + 3 if side == BUY else max(1, stop - 3)
            cmd = (STOP_LMT, next_id, owner, side, limit, _size(rnd), stop)
        elif r < 0.70:
            cmd = (TRAIL, next_id, owner, side, None, _size(rnd), rnd.choice((5, 10, 20)))
        elif r < 0.85:
            oid = live.pick(book.__contains__)
            if oid is None:
                continue
            cmd = (CANCEL, oid, None, None, None, None, None)
        elif r < 0.90:
            oid = live.pick(book.__contains__)
            if oid is None:
                continue
            live.add(oid)
            order = book.order(oid)
            if rnd.random() < 0.5 or order.price is None:
                qty = max(order.qty - order.remaining + 1, order.qty - rnd.randint(1, 5))
                price = None
            else:
                qty, price = None, order.price + rnd.choice((-2, -1, 1, 2))
            if qty == order.qty and price is None:
                qty += 1
            cmd = (AMEND, oid, None, None, price, qty, None)
        else:
            kind = rnd.random()
            through = rnd.randint(0, 3)
            price = ask + through if side == BUY else bid - through
            qty = rnd.choice((10, 25, 50, 100, 200))
            if kind < 0.4:
                cmd = (MARKET_QTY, next_id, owner, side, None, qty, None)
            elif kind < 0.5 and side == BUY:
                cmd = (MARKET_QUOTE, next_id, owner, side, None, None, qty * ask)
            elif kind < 0.8:
                cmd = (IOC_ADD, next_id, owner, side, price, qty, None)
            elif kind < 0.9:
                cmd = (FOK_ADD, next_id, owner, side, price, qty, None)
            else:
                cmd = (TAKE, next_id, owner, side, price, qty, None)
        _apply_full(book, cmd)
        if cmd[0] not in (CANCEL, AMEND):
            live.add(next_id)
            next_id += 1
        out.append(cmd)
        if len(book._events) > BATCH:
            book.drain()
    return out[:seed_orders], out[seed_orders:]


def _apply_full(book, cmd):
    code, oid, owner, side, price, qty, extra = cmd
    if code in (ADD, TAKE):
        book.place_limit(oid, owner, side, qty, price)
    elif code == CANCEL:
        book.cancel(oid)
    elif code == ICEBERG:
        book.place(oid, owner, side, LIMIT, qty, price, display_qty=extra)
    elif code == POST_ONLY:
        book.place(oid, owner, side, LIMIT, qty, price, post_only=True)
    elif code == STOP:
        book.place(oid, owner, side, STOP_MARKET, qty, stop_price=extra)
    elif code == STOP_LMT:
        book.place(oid, owner, side, STOP_LIMIT, qty, price, stop_price=extra)
    elif code == TRAIL:
        book.place(oid, owner, side, TRAILING_STOP, qty, trail_ticks=extra)
    elif code == AMEND:
        book.amend(oid, qty, price)
    elif code == MARKET_QTY:
        book.place(oid, owner, side, MARKET, qty)
    elif code == MARKET_QUOTE:
        book.place(oid, owner, side, MARKET, quote_qty=extra)
    elif code == IOC_ADD:
        book.place(oid, owner, side, LIMIT, qty, price, IOC)
    elif code == FOK_ADD:
        book.place(oid, owner, side, LIMIT, qty, price, FOK)


# ------------------------------------------------------------------------------ drivers


def run_ours_limit(book, stream):
    """One batch of the runner's calls, then the drain that hands the events over."""
    place_limit = book.place_limit
    cancel = book.cancel
    for code, oid, side, price, qty in stream:
        if code == CANCEL:
            cancel(oid)
        else:
            place_limit(oid, oid, side, qty, price)
    book.drain()


def run_base_limit(book, stream):
    limit = book.limit
    cancel = book.cancel
    for code, oid, side, price, qty in stream:
        if code == CANCEL:
            cancel(oid)
        else:
            limit(oid, side, price, qty)
    book.fills.clear()


def run_ours_full(book, stream):
    for cmd in stream:
        _apply_full(book, cmd)
    book.drain()


def batches(stream):
    return [stream[i : i + BATCH] for i in range(0, len(stream), BATCH)]


def paired(run_a, book_a, run_b, book_b, chunks, a_first, between=None):
    """Both engines through the same stream batch by batch, alternating which goes first,
    so that both see the same load on a shared machine. ``between`` runs after each pair,
    untimed (the runner's GC checkpoint). Returns the per-batch seconds of a and of b."""
    clock = time.perf_counter
    times_a, times_b = [], []
    for chunk in chunks:
        if a_first:
            t0 = clock()
            run_a(book_a, chunk)
            t1 = clock()
            run_b(book_b, chunk)
            t2 = clock()
            times_a.append(t1 - t0)
            times_b.append(t2 - t1)
        else:
            t0 = clock()
            run_b(book_b, chunk)
            t1 = clock()
            run_a(book_a, chunk)
            t2 = clock()
            times_b.append(t1 - t0)
            times_a.append(t2 - t1)
        a_first = not a_first
        if between is not None:
            between()
    return times_a, times_b


def alone(run, book, chunks, between=None):
    clock = time.perf_counter
    times = []
    for chunk in chunks:
        t0 = clock()
        run(book, chunk)
        times.append(clock() - t0)
        if between is not None:
            between()
    return times


def best_of_rounds(rounds):
    """Sum over batches of each batch's fastest time across rounds: every round runs the
    same batches on the same states, so the fastest is the one least disturbed by other
    work on the machine (preemption, other tenants)."""
    return sum(min(times) for times in zip(*rounds))


def latencies(run_one, book, chunks, flush, between=None, out=None):
    """Every command timed on its own (perf_counter_ns around the call). ``out``: a list
    of the right size made before the GC mode is entered (so that, frozen, it is not
    walked by every checkpoint collection as a young object growing to 200,000 entries)."""
    clock = time.perf_counter_ns
    if out is None:
        out = [0] * sum(len(chunk) for chunk in chunks)
    i = 0
    for chunk in chunks:
        for cmd in chunk:
            t0 = clock()
            run_one(book, cmd)
            out[i] = clock() - t0
            i += 1
        flush(book)
        if between is not None:
            between()
    return out


def one_ours_limit(book, cmd):
    if cmd[0] == CANCEL:
        book.cancel(cmd[1])
    else:
        book.place_limit(cmd[1], cmd[1], cmd[2], cmd[4], cmd[3])


def one_base_limit(book, cmd):
    if cmd[0] == CANCEL:
        book.cancel(cmd[1])
    else:
        book.limit(cmd[1], cmd[2], cmd[3], cmd[4])


def seeded_ours(seed_cmds, full=False):
    book = OrderBook("BENCH")
    for chunk in batches(seed_cmds):
        (run_ours_full if full else run_ours_limit)(book, chunk)
    return book


def seeded_base(seed_cmds):
    book = BaselineBook()
    for chunk in batches(seed_cmds):
        run_base_limit(book, chunk)
    return book


class GcMode:
    """ "default": the interpreter's GC settings; "hotpath": the runner's HotPathGC (frozen
    heap, automatic collection off, a checkpoint between batches, outside the timing)."""

    def __init__(self, name):
        self.name = name
        self.guard = None

    def __enter__(self):
        gc.collect()
        if self.name == "hotpath":
            self.guard = HotPathGC().__enter__()
        return self

    def __exit__(self, *exc):
        if self.guard is not None:
            self.guard.__exit__(*exc)
        return False

    @property
    def between(self):
        return None if self.guard is None else self.guard.checkpoint


def percentiles(samples):
    data = sorted(samples)

    def pick(q):
        return data[min(len(data) - 1, int(q * len(data)))] / 1000

    return {"p50": pick(0.50), "p99": pick(0.99), "p99.9": pick(0.999), "max": data[-1] / 1000}


def timer_overhead():
    clock = time.perf_counter_ns
    best = []
    for _ in range(5):
        t0 = clock()
        for _ in range(100_000):
            clock()
        best.append((clock() - t0) / 100_000)
    return min(best)


def check_same_trades(seed_cmds, stream):
    """Both engines on the limit-only stream must print the same trades."""
    ours = seeded_ours(seed_cmds)
    base = seeded_base(seed_cmds)
    ours_trades = []
    for chunk in batches(stream):
        for code, oid, side, price, qty in chunk:
            if code == CANCEL:
                ours.cancel(oid)
                base.cancel(oid)
            else:
                ours.place_limit(oid, oid, side, qty, price)
                base.limit(oid, side, price, qty)
        ours_trades.extend((e[4], e[5], e[2], e[3]) for e in ours.drain() if e[0] == TRADE)
    if ours_trades != base.fills:
        raise SystemExit(f"engines disagree: {len(ours_trades)} trades vs {len(base.fills)}")
    return len(ours_trades)


def pause_child(mode_name, n_resting, n_commands, seed):
    """In a fresh interpreter (so the heap is the engine's, not this benchmark's): the
    per-command latencies of the full mix with ``n_resting`` orders resting at start, and
    what one full collection of that heap costs. Prints one JSON line."""
    seed_cmds, stream = full_stream(n_commands, seed, n_resting)
    book = seeded_ours(seed_cmds, full=True)
    del seed_cmds
    resting = len(book)
    gc.collect()
    tracked = len(gc.get_objects())
    start = time.perf_counter_ns()
    gc.collect()
    full_collection_ns = time.perf_counter_ns() - start
    chunks = batches(stream)
    lat = [0] * len(stream)
    with GcMode(mode_name) as mode:
        latencies(_apply_full_one, book, chunks, OrderBook.drain, mode.between, lat)
        guard = mode.guard
        idle_full_ns = guard.full_collect() if guard is not None else None
    stats = percentiles(lat)
    print(
        json.dumps(
            {
                "resting": resting,
                "tracked": tracked,
                "commands": len(lat),
                "full_collection_ns": full_collection_ns,
                "p99": stats["p99"],
                "p99.9": stats["p99.9"],
                "max_us": stats["max"],
                "over_1ms": sum(1 for x in lat if x > 1_000_000),
                "checkpoints": guard.checkpoints if guard else None,
                "checkpoint_max_ns": guard.max_pause_ns if guard else None,
                "enter_ns": guard.enter_pause_ns if guard else None,
                "idle_full_ns": idle_full_ns,
            }
        )
    )


def pause_test(mode_name, n_resting, n_commands, seed):
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--pause-child",
            mode_name,
            "--resting",
            str(n_resting),
            "--commands",
            str(n_commands),
            "--seed",
            str(seed),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _apply_full_one(book, cmd):
    _apply_full(book, cmd)


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run: 3 rounds, 50,000 commands, 20,000 resting")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--commands", type=int, default=200_000, help="timed commands per stream")
    parser.add_argument("--seed-orders", type=int, default=20_000, help="untimed commands that build the book first")
    parser.add_argument("--resting", type=int, default=100_000, help="resting orders for the pause measurement")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--pause-child", choices=("default", "hotpath"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pause_child:
        return pause_child(args.pause_child, args.resting, args.commands, args.seed)
    if args.quick:
        args.rounds, args.commands, args.seed_orders, args.resting = 3, 50_000, 10_000, 20_000

    print(
        f"bench/engine: {args.commands:,} timed commands per stream after {args.seed_orders:,} seeding ones, "
        f"{args.rounds} rounds, batches of {BATCH}, seed {args.seed}"
    )
    print(
        f"machine: nproc {os.cpu_count()}, CPU {_cpu_model()!r}, Python {platform.python_version()} "
        f"({platform.python_implementation()})"
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    seed_limit, limit_cmds = limit_stream(args.commands, args.seed, args.seed_orders)
    seed_full, full_cmds = full_stream(args.commands, args.seed + 1, args.seed_orders)
    limit_chunks, full_chunks = batches(limit_cmds), batches(full_cmds)
    mix = {}
    for cmd in limit_cmds:
        mix[cmd[0]] = mix.get(cmd[0], 0) + 1
    trades = check_same_trades(seed_limit, limit_cmds)
    print(
        f"limit-only stream: {mix.get(ADD, 0) / len(limit_cmds):.0%} adds, "
        f"{mix.get(CANCEL, 0) / len(limit_cmds):.0%} cancels, {mix.get(TAKE, 0) / len(limit_cmds):.0%} marketable; "
        f"{trades:,} trades, identical in both engines"
    )
    full_mix = {}
    for cmd in full_cmds:
        full_mix[cmd[0]] = full_mix.get(cmd[0], 0) + 1
    names = {
        ADD: "limit",
        ICEBERG: "iceberg",
        POST_ONLY: "post-only",
        STOP: "stop-market",
        STOP_LMT: "stop-limit",
        TRAIL: "trailing",
        CANCEL: "cancel",
        AMEND: "amend",
        MARKET_QTY: "market",
        MARKET_QUOTE: "market quote",
        IOC_ADD: "IOC",
        FOK_ADD: "FOK",
        TAKE: "marketable GTC",
    }
    print(
        "full-mix stream: "
        + ", ".join(f"{names[code]} {count / len(full_cmds):.1%}" for code, count in sorted(full_mix.items()))
    )

    modes = ("default", "hotpath")
    batch_times = {(engine, mode): [] for engine in ("ours", "base", "full") for mode in modes}
    for round_no in range(1, args.rounds + 1):
        line = []
        for mode_name in modes:
            ours, base = seeded_ours(seed_limit), seeded_base(seed_limit)
            with GcMode(mode_name) as mode:
                a, b = paired(
                    run_ours_limit, ours, run_base_limit, base, limit_chunks, bool(round_no % 2), mode.between
                )
            del ours, base
            book = seeded_ours(seed_full, full=True)
            with GcMode(mode_name) as mode:
                full = alone(run_ours_full, book, full_chunks, mode.between)
            del book
            batch_times["ours", mode_name].append(a)
            batch_times["base", mode_name].append(b)
            batch_times["full", mode_name].append(full)
            line.append(
                f"{mode_name} GC: ours {len(limit_cmds) / sum(a):,.0f}/s, baseline "
                f"{len(limit_cmds) / sum(b):,.0f}/s, ratio {sum(b) / sum(a):.2f}x, "
                f"full mix {len(full_cmds) / sum(full):,.0f}/s"
            )
        print(f"round {round_no}: " + "; ".join(line), flush=True)

    print()
    print(f"{'commands/s':40} {'ours':>11} {'baseline':>11}   ratio ours/baseline")
    for mode_name in modes:
        ours_rounds, base_rounds = batch_times["ours", mode_name], batch_times["base", mode_name]
        ratios = [sum(b) / sum(a) for a, b in zip(ours_rounds, base_rounds)]
        ours_rates = [len(limit_cmds) / sum(a) for a in ours_rounds]
        base_rates = [len(limit_cmds) / sum(b) for b in base_rounds]
        print(
            f"{'limit-only, ' + mode_name + ' GC, median of rounds':40} {statistics.median(ours_rates):>11,.0f} "
            f"{statistics.median(base_rates):>11,.0f}   {statistics.median(ratios):.2f}x "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f})"
        )
        best_ours, best_base = best_of_rounds(ours_rounds), best_of_rounds(base_rounds)
        print(
            f"{'limit-only, ' + mode_name + ' GC, best batch of rounds':40} {len(limit_cmds) / best_ours:>11,.0f} "
            f"{len(limit_cmds) / best_base:>11,.0f}   {best_base / best_ours:.2f}x"
        )
    for mode_name in modes:
        full_rounds = batch_times["full", mode_name]
        print(
            f"{'full mix, ' + mode_name + ' GC, median of rounds':40} "
            f"{statistics.median(len(full_cmds) / sum(t) for t in full_rounds):>11,.0f} {'-':>11}"
        )
        print(
            f"{'full mix, ' + mode_name + ' GC, best batch of rounds':40} "
            f"{len(full_cmds) / best_of_rounds(full_rounds):>11,.0f} {'-':>11}"
        )
    print("ratio > 1: ours faster. Each round runs both engines over the same batches alternately; 'best batch':")
    print("each batch's fastest time over the rounds, summed (filters preemption by other work on the machine)")

    timer = timer_overhead()
    print()
    print(
        f"per-command latency in us, one pass with every command timed (perf_counter_ns, its own cost "
        f"{timer:.0f} ns included):"
    )
    print(f"{'':34} {'p50':>7} {'p99':>7} {'p99.9':>7} {'max':>9}")
    for mode_name in ("default", "hotpath"):
        books = (seeded_ours(seed_limit), seeded_base(seed_limit), seeded_ours(seed_full, full=True))
        outs = ([0] * len(limit_cmds), [0] * len(limit_cmds), [0] * len(full_cmds))
        with GcMode(mode_name) as mode:
            rows = [
                (
                    "ours, limit-only",
                    latencies(one_ours_limit, books[0], limit_chunks, OrderBook.drain, mode.between, outs[0]),
                ),
                (
                    "baseline, limit-only",
                    latencies(
                        one_base_limit, books[1], limit_chunks, lambda book: book.fills.clear(), mode.between, outs[1]
                    ),
                ),
                (
                    "ours, full mix",
                    latencies(_apply_full_one, books[2], full_chunks, OrderBook.drain, mode.between, outs[2]),
                ),
            ]
        del books
        for name, lat in rows:
            stats = percentiles(lat)
            print(
                f"{name + ', ' + mode_name + ' GC':34} {stats['p50']:>7.2f} {stats['p99']:>7.2f} "
                f"{stats['p99.9']:>7.2f} {stats['max']:>9.1f}"
            )

    print()
    print(
        f"pause test, each in a fresh process: {args.resting:,} orders resting at start, then {args.commands:,} "
        f"full-mix commands, each timed"
    )
    for mode_name in ("default", "hotpath"):
        r = pause_test(mode_name, args.resting, args.commands, args.seed + 2)
        print(
            f"  {mode_name} GC: {r['resting']:,} open orders, {r['tracked']:,} GC-tracked objects; p99 "
            f"{r['p99']:.1f} us, p99.9 {r['p99.9']:.1f} us, worst command {r['max_us'] / 1000:.2f} ms, "
            f"commands over 1 ms: {r['over_1ms']}",
            flush=True,
        )
        if mode_name == "default":
            print(
                f"    one full collection of this heap (what the default GC runs at an arbitrary command): "
                f"{r['full_collection_ns'] / 1e6:.1f} ms"
            )
        else:
            print(
                f"    {r['checkpoints']} checkpoint collections between batches, worst "
                f"{r['checkpoint_max_ns'] / 1e6:.2f} ms; entering HotPathGC {r['enter_ns'] / 1e6:.1f} ms (once, at "
                f"start); an idle-time full_collect() {r['idle_full_ns'] / 1e6:.1f} ms"
            )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
