"""A simulated market: one true price path per underlying and several exchanges quoting it.

The true path is geometric Brownian motion with Poisson jumps (Merton), correlated across
underlyings, advanced in simulated time by ``MarketSimulator.advance_to(t)`` (seconds). Each
simulated exchange quotes ``true × (1 + basis + noise)``: a small persistent basis of its
own, per-update noise clipped at three standard deviations, a spread around the mid, rare
bad prints (a few percent off), and outages during which it either serves nothing or keeps
serving its last quote with the old timestamp. Everything is a pure function of the seed,
the configuration and the sequence of times passed to ``advance_to``; the order in which
sources are fetched does not matter, because all randomness is drawn inside ``advance_to``.
The true path has random streams of its own, so it does not change with the exchanges.

``history()`` draws a deterministic past path quickly (vectorised) that ends exactly at the
simulator's starting price at ``start_time``, so a candle backfill joins the live path.

Units: times in seconds, ``vol``/``drift`` annualised over 365 days (crypto trades every
day), jump intensity per day, jump sizes in log-price, basis/noise/spread in basis points.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .sources import PRICE_QUANTUM, Quote, to_price

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_YEAR = 365 * SECONDS_PER_DAY
BP = 1e-4

_PATH_STREAM = 1
_EXCHANGE_STREAM = 2
_HISTORY_STREAM = 3
_BASIS_STREAM = 4


@dataclass(frozen=True)
class SimParams:
    """One underlying's true-price process.

    ``vol`` is the annualised volatility of the diffusion; jumps add
    ``sqrt(jump_intensity_per_day * 365 * (jump_mean² + jump_std²))`` on top. ``drift`` is
    the annualised drift of the expected price: with the default 0 the price is a
    martingale (jumps are compensated)."""

    start: Decimal
    vol: float
    drift: float = 0.0
    jump_intensity_per_day: float = 0.25
    jump_std: float = 0.02
    jump_mean: float = 0.0

    def __post_init__(self):
        object.__setattr__(
            self, "start", to_price(self.start if not isinstance(self.start, float) else str(self.start))
        )
        if self.vol < 0 or self.jump_std < 0 or self.jump_intensity_per_day < 0:
            raise ValueError("vol, jump_std and jump_intensity_per_day must not be negative")


@dataclass(frozen=True)
class ExchangeProfile:
    """How one simulated exchange quotes. ``basis_bp=None`` draws a persistent basis per
    underlying from the seed, uniform in ±``MAX_BASIS_BP``."""

    name: str
    basis_bp: float | None = None
    noise_bp: float = 1.0  # std of per-update noise, clipped at ±3 std
    half_spread_bp: float = 0.75
    outages_per_day: float = 6.0
    outage_mean_s: float = 40.0
    frozen_share: float = 0.5  # outages that keep serving the last quote (stale ts); the rest serve None
    bad_print_prob: float = 0.0005  # per quote update and underlying
    bad_print_min: float = 0.03  # a bad print is off by a uniform 3%..10%, either way
    bad_print_max: float = 0.10


MAX_BASIS_BP = 4.0

DEFAULT_UNDERLYINGS: dict[str, SimParams] = {
    "BTC": SimParams(start=Decimal("65000"), vol=0.55, jump_intensity_per_day=0.25, jump_std=0.02),
    "ETH": SimParams(start=Decimal("3400"), vol=0.70, jump_intensity_per_day=0.30, jump_std=0.025),
}
DEFAULT_EXCHANGES = ("sim-alpha", "sim-beta", "sim-gamma", "sim-delta", "sim-epsilon")
DEFAULT_CORRELATION = 0.75  # BTC/ETH daily returns have been roughly this correlated


@dataclass(frozen=True)
class SimQuoteState:
    """What a simulated exchange is doing right now, for tests and operators."""

    exchange: str
    underlying: str
    mid: float | None  # the unrounded mid it serves (None: serving nothing)
    ts: float | None
    bad_print: bool
    outage: str | None  # None, "down" or "frozen"


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _ms(seconds: float) -> int:
    """Milliseconds as seed entropy, which must not be negative (times before 0 are fine)."""
    return round(seconds * 1000) & 0xFFFF_FFFF_FFFF_FFFF


class _Stream:
    """Rows of random numbers drawn in blocks: one row per simulation step. numpy's per-call
    overhead dwarfs a handful of numbers, so the live path draws 1024 steps at a time and
    walks them in plain Python. Deterministic: row k is the same whatever the step sizes."""

    BLOCK = 1024

    def __init__(self, seed_sequence: np.random.SeedSequence, width: int, *, normal: bool = False):
        self._rng = np.random.default_rng(seed_sequence)
        self._width = width
        self._normal = normal
        self._rows: list[list[float]] = []
        self._next = 0

    def next(self) -> list[float]:
        if self._next >= len(self._rows):
            shape = (self.BLOCK, max(self._width, 1))
            block = self._rng.standard_normal(shape) if self._normal else self._rng.random(shape)
            self._rows = block.tolist()
            self._next = 0
        row = self._rows[self._next]
        self._next += 1
        return row


def _poisson(mean: float, u: float) -> int:
    """Poisson(mean) by inversion of one uniform ``u`` (means here are far below 1)."""
    if mean <= 0.0:
        return 0
    term = math.exp(-mean)
    cdf = term
    count = 0
    while u > cdf and count < 1000:
        count += 1
        term *= mean / count
        cdf += term
    return count


class MarketSimulator:
    def __init__(
        self,
        seed: int,
        underlyings: Mapping[str, SimParams] | None = None,
        exchanges: Iterable[str | ExchangeProfile] = DEFAULT_EXCHANGES,
        *,
        correlation: float = DEFAULT_CORRELATION,
        start_time: float = 0.0,
    ):
        if seed < 0:
            raise ValueError("seed must not be negative")
        self.seed = int(seed)
        self.params: dict[str, SimParams] = dict(underlyings if underlyings is not None else DEFAULT_UNDERLYINGS)
        if not self.params:
            raise ValueError("at least one underlying")
        self.underlyings: tuple[str, ...] = tuple(self.params)
        self.start_time = float(start_time)
        self.correlation = correlation
        self._index = {name: i for i, name in enumerate(self.underlyings)}

        n = len(self.underlyings)
        corr = np.full((n, n), correlation, dtype=float)
        np.fill_diagonal(corr, 1.0)
        try:
            self._chol = np.linalg.cholesky(corr)
        except np.linalg.LinAlgError:
            raise ValueError(f"correlation {correlation} is not valid for {n} underlyings") from None

        p = [self.params[u] for u in self.underlyings]
        self._sigma = [x.vol for x in p]
        self._lam_year = [x.jump_intensity_per_day * 365.0 for x in p]
        self._jump_mean = [x.jump_mean for x in p]
        self._jump_std = [x.jump_std for x in p]
        # log-price drift per year: the Itô term and the jump compensator keep E[S] = S0·exp(drift·t)
        self._log_drift = [
            x.drift - 0.5 * x.vol**2 - lam * (math.exp(x.jump_mean + 0.5 * x.jump_std**2) - 1.0)
            for x, lam in zip(p, self._lam_year, strict=True)
        ]
        self._log0 = [math.log(float(x.start)) for x in p]

        self._t = self.start_time
        self._chol_rows = self._chol.tolist()
        self._log_price = list(self._log0)
        self._path_normals = _Stream(np.random.SeedSequence([self.seed, _PATH_STREAM, 0]), n, normal=True)
        self._path_uniforms = _Stream(np.random.SeedSequence([self.seed, _PATH_STREAM, 1]), n)
        self._jump_rng = np.random.default_rng(np.random.SeedSequence([self.seed, _PATH_STREAM, 2]))
        self._jumps: dict[str, list[tuple[float, float]]] = {u: [] for u in self.underlyings}

        profiles = [e if isinstance(e, ExchangeProfile) else ExchangeProfile(name=e) for e in exchanges]
        names = [e.name for e in profiles]
        if len(set(names)) != len(names):
            raise ValueError("exchange names must be unique")
        self.exchanges: tuple[str, ...] = tuple(names)
        self._profiles = profiles
        self._exchange_index = {name: i for i, name in enumerate(names)}
        m = len(profiles)
        # per step and exchange: 3 uniforms for outages, then 3 per underlying for bad prints
        self._exchange_uniforms = _Stream(np.random.SeedSequence([self.seed, _EXCHANGE_STREAM, 0]), m * (3 + 3 * n))
        self._exchange_normals = _Stream(np.random.SeedSequence([self.seed, _EXCHANGE_STREAM, 1]), m * n, normal=True)
        self._basis = [[self._basis_for(e, u) for u in self.underlyings] for e in profiles]
        self._outage: list[str | None] = [None] * m
        self._outage_until = [0.0] * m
        self._mid: list[list[float | None]] = [[None] * n for _ in range(m)]
        self._quote_ts: list[list[float | None]] = [[None] * n for _ in range(m)]
        self._bad = [[False] * n for _ in range(m)]
        self._update_quotes(self._t, 0.0)

    # --- the true path -------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self._t

    def advance_to(self, t: float) -> None:
        """Move simulated time to ``t`` (seconds). A ``t`` at or before the current time
        changes nothing, so callers may pass a wall clock that stalls or steps back."""
        t = float(t)
        if t <= self._t:
            return
        dt = t - self._t
        dt_y = dt / SECONDS_PER_YEAR
        root_dt = math.sqrt(dt_y)
        w = self._path_normals.next()
        u = self._path_uniforms.next()
        for i, row in enumerate(self._chol_rows):
            z = sum(row[j] * w[j] for j in range(i + 1))
            step = self._log_drift[i] * dt_y + self._sigma[i] * root_dt * z
            count = _poisson(self._lam_year[i] * dt_y, u[i])
            if count:
                sizes = self._jump_rng.normal(self._jump_mean[i], self._jump_std[i], count).tolist()
                step += sum(sizes)
                self._jumps[self.underlyings[i]].extend((t, size) for size in sizes)
            self._log_price[i] += step
        self._t = t
        self._update_quotes(t, dt)

    def true_price_float(self, underlying: str) -> float:
        return math.exp(self._log_price[self._index[underlying]])

    def true_price(self, underlying: str) -> Decimal:
        return to_price(repr(self.true_price_float(underlying)))

    def jumps(self, underlying: str) -> list[tuple[float, float]]:
        """Every jump so far: (time, log size)."""
        return list(self._jumps[underlying])

    # --- the exchanges -------------------------------------------------------------------

    def _basis_for(self, profile: ExchangeProfile, underlying: str) -> float:
        if profile.basis_bp is not None:
            return profile.basis_bp * BP
        # keyed by names, not positions, so adding an exchange leaves the others' basis alone
        rng = np.random.default_rng(
            np.random.SeedSequence([self.seed, _BASIS_STREAM, _crc(profile.name), _crc(underlying)])
        )
        return float(rng.uniform(-MAX_BASIS_BP, MAX_BASIS_BP)) * BP

    def _update_quotes(self, t: float, dt: float) -> None:
        m, n = len(self._profiles), len(self.underlyings)
        if m == 0:
            return
        uniforms = self._exchange_uniforms.next()
        normals = self._exchange_normals.next()
        true = [math.exp(x) for x in self._log_price]
        width = 3 + 3 * n
        for e, profile in enumerate(self._profiles):
            u = uniforms[e * width : (e + 1) * width]
            if self._outage[e] is not None and t >= self._outage_until[e]:
                self._outage[e] = None
            if (
                self._outage[e] is None
                and dt > 0
                and u[0] < -math.expm1(-profile.outages_per_day / SECONDS_PER_DAY * dt)
            ):
                self._outage[e] = "frozen" if u[1] < profile.frozen_share else "down"
                self._outage_until[e] = t - profile.outage_mean_s * math.log1p(-u[2])
            if self._outage[e] == "frozen":
                continue  # keep serving the last quote, timestamp and all
            for i in range(n):
                if self._outage[e] == "down":
                    self._mid[e][i] = self._quote_ts[e][i] = None
                    self._bad[e][i] = False
                    continue
                noise = min(3.0, max(-3.0, normals[e * n + i])) * profile.noise_bp * BP
                mid = true[i] * (1.0 + self._basis[e][i] + noise)
                bad = u[3 + 3 * i] < profile.bad_print_prob
                if bad:
                    size = profile.bad_print_min + (profile.bad_print_max - profile.bad_print_min) * u[4 + 3 * i]
                    mid *= 1.0 - size if u[5 + 3 * i] < 0.5 else 1.0 + size
                self._mid[e][i] = mid
                self._quote_ts[e][i] = t
                self._bad[e][i] = bad

    def quote(self, exchange: str, underlying: str) -> Quote | None:
        """What ``exchange`` shows for ``underlying`` at the current simulated time."""
        e = self._exchange_index[exchange]
        i = self._index.get(underlying)
        if i is None:
            return None
        mid = self._mid[e][i]
        if mid is None:
            return None
        half = mid * self._profiles[e].half_spread_bp * BP
        return Quote(
            source=exchange,
            underlying=underlying,
            price=to_price(repr(mid)),
            bid=repr(mid - half),
            ask=repr(mid + half),
            ts=self._quote_ts[e][i],
        )

    def state(self, exchange: str, underlying: str) -> SimQuoteState:
        e, i = self._exchange_index[exchange], self._index[underlying]
        return SimQuoteState(
            exchange=exchange,
            underlying=underlying,
            mid=self._mid[e][i],
            ts=self._quote_ts[e][i],
            bad_print=self._bad[e][i],
            outage=self._outage[e],
        )

    def sources(self) -> list[SimulatedExchangeSource]:
        return [SimulatedExchangeSource(self, name) for name in self.exchanges]

    # --- history -------------------------------------------------------------------------

    def history(self, underlying: str, start: float, end: float, step: float) -> list[tuple[float, Decimal]]:
        """The true price at ``start, start+step, …`` up to ``end`` (inclusive when on the
        grid), as ``(time, price)``. The path is drawn backwards from the starting price at
        ``start_time``, so ``end`` must not be after ``start_time``; it is a pure function
        of (seed, underlyings, correlation, start, end, step) and leaves the live path alone.
        All underlyings are drawn together, so their histories are correlated."""
        if underlying not in self._index:
            raise KeyError(underlying)
        if step <= 0:
            raise ValueError("step must be positive")
        if end < start:
            raise ValueError("end is before start")
        if end > self.start_time + 1e-9:
            raise ValueError("history ends at the simulator's start_time at the latest")
        count = math.floor((end - start) / step + 1e-9) + 1
        times = start + step * np.arange(count, dtype=float)
        # walk back from the anchor: gaps[k] separates the k-th point from the one after it
        later = np.concatenate(([self.start_time], times[::-1][:-1]))
        gaps_y = (later - times[::-1]) / SECONDS_PER_YEAR

        rng = np.random.default_rng(
            np.random.SeedSequence([self.seed, _HISTORY_STREAM, _ms(start), _ms(end), _ms(step)])
        )
        n = len(self.underlyings)
        sigma, log_drift = np.array(self._sigma), np.array(self._log_drift)
        lam, jump_mean, jump_std = np.array(self._lam_year), np.array(self._jump_mean), np.array(self._jump_std)
        z = rng.standard_normal((count, n)) @ self._chol.T
        increments = log_drift * gaps_y[:, None] + sigma * np.sqrt(gaps_y)[:, None] * z
        counts = rng.poisson(lam * gaps_y[:, None])
        increments += rng.normal(counts * jump_mean, np.sqrt(counts) * jump_std)
        log_prices = np.array(self._log0) - np.cumsum(increments, axis=0)
        column = log_prices[::-1, self._index[underlying]]
        prices = np.round(np.exp(column), 2)
        return [(float(t), Decimal(f"{p:.2f}").quantize(PRICE_QUANTUM)) for t, p in zip(times, prices, strict=True)]


class SimulatedExchangeSource:
    """One simulated exchange as a ``Source``. ``fetch`` advances the shared simulator to
    ``now`` first, so the sources of one simulator may be fetched in any order."""

    def __init__(self, simulator: MarketSimulator, exchange: str):
        if exchange not in simulator.exchanges:
            raise KeyError(exchange)
        self.simulator = simulator
        self.name = exchange

    def fetch(self, underlying: str, now: float) -> Quote | None:
        self.simulator.advance_to(now)
        return self.simulator.quote(self.name, underlying)

    def __repr__(self) -> str:
        return f"SimulatedExchangeSource({self.name!r})"
