"""Volatility smile per expiry: SVI "raw" total implied variance.

    w(k) = a + b * (rho * (k - m) + sqrt((k - m)^2 + sigma^2)),   k = ln(K / F),
    vol(K) = sqrt(w(k) / t)

(Gatheral 2004). ``Smile.from_atm`` builds one from an at-the-money vol, skew and
curvature; ``default_smile`` is the shape the market simulator feeds with its ATM vol.

No-arbitrage checks (``Smile.violations``), loose on purpose -- a smile that fails them
still prices, the caller decides:

* parameters: b >= 0, |rho| < 1, sigma > 0, minimum total variance
  a + b*sigma*sqrt(1 - rho^2) >= 0 (enforced at construction: a vol must exist);
* wings: Roger Lee's moment formula bounds the slope of total variance in |k| by 2, and
  SVI's wing slopes are b(1 - rho) and b(1 + rho), so b(1 + |rho|) <= 2. (Gatheral's
  ``b(1+|rho|) <= 4/t`` is the same kind of bound -- Rogers-Tehranchi's 4 -- for SVI
  written on variance instead of total variance; ours is the stricter one.)
* butterflies: Durrleman's condition g(k) >= 0 -- the risk-neutral density implied by the
  smile is non-negative -- checked on a grid of k that resolves the smile's curvature.

Calendar arbitrage (total variance increasing with expiry at fixed k) involves two smiles
and is not checked here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: ATM vols the simulator starts from (annualised, fractions).
DEFAULT_ATM_VOL = {"BTC": 0.55, "ETH": 0.70}

#: Default smile shape in standardised moneyness z = ln(K/F) / (atm_vol * sqrt(t)), near the
#: money: vol ~ atm_vol * (1 + SKEW_Z * z + CURVATURE_Z * z^2 / 2). Puts a little richer than
#: calls, wings up: about -2 vol points of 25-delta risk reversal and +2 of butterfly at 0.55.
DEFAULT_SKEW_Z = -0.04
DEFAULT_CURVATURE_Z = 0.20

#: Lee's bound on the wing slope of total variance.
LEE_MAX_SLOPE = 2.0


@dataclass(frozen=True, slots=True)
class Smile:
    """SVI raw parameters of one expiry, ``t_years`` (365-day years) ahead."""

    t_years: float
    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def __post_init__(self):
        values = (self.t_years, self.a, self.b, self.rho, self.m, self.sigma)
        try:
            finite = all(math.isfinite(v) for v in values)
        except TypeError:
            finite = False
        if not finite:
            raise ValueError(f"SVI parameters must be finite numbers: {values!r}")
        if self.t_years <= 0:
            raise ValueError(f"t_years must be positive, not {self.t_years!r}")
        if self.b < 0:
            raise ValueError(f"SVI b must be >= 0, not {self.b!r}")
        if not -1.0 < self.rho < 1.0:
            raise ValueError(f"SVI rho must be in (-1, 1), not {self.rho!r}")
        if self.sigma <= 0:
            raise ValueError(f"SVI sigma must be positive, not {self.sigma!r}")
        if self.min_total_variance < 0:
            raise ValueError(f"SVI total variance goes negative (minimum {self.min_total_variance!r})")

    # --- construction ------------------------------------------------------------------

    @classmethod
    def from_atm(
        cls, atm_vol: float, skew: float, curvature: float, t_years: float, width: float | None = None
    ) -> Smile:
        """The SVI smile (with m = 0) whose implied vol at k = ln(K/F) = 0 has the given
        level ``atm_vol``, slope ``skew`` = d vol / dk and ``curvature`` = d2 vol / dk2.

        ``width`` is SVI's sigma: over how much log-moneyness the smile turns from one wing
        to the other; default one ATM standard deviation, atm_vol * sqrt(t). With m = 0,
        the three ATM conditions fix the rest:

            w(0) = a + b sigma = atm_vol^2 t
            w'(0) = b rho = 2 atm_vol skew t
            w''(0) = b / sigma = 2 t (skew^2 + atm_vol curvature)

        Raises ``ValueError`` when no SVI has them: the total variance must be convex at
        the money (skew^2 + atm_vol * curvature > 0), |rho| < 1 (a skew too steep for
        the curvature and width) and the variance non-negative everywhere.
        """
        if not all(math.isfinite(v) for v in (atm_vol, skew, curvature, t_years)):
            raise ValueError("atm_vol, skew, curvature and t_years must be finite")
        if atm_vol <= 0 or t_years <= 0:
            raise ValueError(f"atm_vol and t_years must be positive, not {atm_vol!r}, {t_years!r}")
        if width is None:
            width = atm_vol * math.sqrt(t_years)
        if not (math.isfinite(width) and width > 0):
            raise ValueError(f"width must be positive and finite, not {width!r}")
        w0 = atm_vol * atm_vol * t_years
        w1 = 2.0 * atm_vol * skew * t_years
        w2 = 2.0 * t_years * (skew * skew + atm_vol * curvature)
        if w2 <= 0:
            raise ValueError(
                "SVI needs a convex total variance at the money: "
                f"skew^2 + atm_vol * curvature = {w2 / (2 * t_years)!r} <= 0"
            )
        b = w2 * width
        rho = w1 / b
        if not -1.0 < rho < 1.0:
            raise ValueError(
                f"skew {skew!r} is too steep for curvature {curvature!r} and width {width!r} (SVI rho would be {rho!r})"
            )
        return cls(t_years=t_years, a=w0 - b * width, b=b, rho=rho, m=0.0, sigma=width)

    # --- values --------------------------------------------------------------------------

    @property
    def min_total_variance(self) -> float:
        return self.a + self.b * self.sigma * math.sqrt(1.0 - self.rho * self.rho)

    def total_variance(self, k: float) -> float:
        """w(k) at log-moneyness k = ln(K/F)."""
        d = k - self.m
        return self.a + self.b * (self.rho * d + math.sqrt(d * d + self.sigma * self.sigma))

    def vol_at(self, k: float) -> float:
        return math.sqrt(max(self.total_variance(k), 0.0) / self.t_years)

    def vol(self, strike: float, forward: float) -> float:
        """Implied vol of ``strike`` for this expiry when the forward is ``forward``."""
        if not (0.0 < strike < math.inf and 0.0 < forward < math.inf):
            raise ValueError(f"strike and forward must be positive and finite: {strike!r}, {forward!r}")
        return self.vol_at(math.log(strike / forward))

    @property
    def atm_vol(self) -> float:
        return self.vol_at(0.0)

    def total_variance_vec(self, k) -> np.ndarray:
        d = np.asarray(k, dtype=np.float64) - self.m
        return self.a + self.b * (self.rho * d + np.sqrt(d * d + self.sigma * self.sigma))

    def vols(self, strikes, forward) -> np.ndarray:
        """``vol`` over arrays (strikes and forward broadcast together)."""
        strikes = np.asarray(strikes, dtype=np.float64)
        forward = np.asarray(forward, dtype=np.float64)
        if not (
            np.all(np.isfinite(strikes))
            and np.all(strikes > 0)
            and np.all(np.isfinite(forward))
            and np.all(forward > 0)
        ):
            raise ValueError("strikes and forward must be positive and finite")
        w = self.total_variance_vec(np.log(strikes / forward))
        return np.sqrt(np.maximum(w, 0.0) / self.t_years)

    # --- no-arbitrage checks ------------------------------------------------------------

    def durrleman_g(self, k) -> np.ndarray:
        """Durrleman's g(k) = (1 - k w'/(2w))^2 - w'^2/4 (1/w + 1/4) + w''/2; the implied
        density is non-negative where g >= 0 (and w > 0)."""
        k = np.asarray(k, dtype=np.float64)
        d = k - self.m
        root = np.sqrt(d * d + self.sigma * self.sigma)
        w = self.a + self.b * (self.rho * d + root)
        w1 = self.b * (self.rho + d / root)
        w2 = self.b * self.sigma * self.sigma / (root * root * root)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (1.0 - k * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
        return np.where(w > 0, g, -np.inf)

    def check_grid(self) -> np.ndarray:
        """Log-moneyness points for the butterfly check: dense across the smile's turn
        (a few ``sigma`` around ``m``) and out to |k| = 5 (strikes e^-5 .. e^5 of the forward)."""
        return np.unique(
            np.concatenate(
                [
                    self.m + self.sigma * np.linspace(-20.0, 20.0, 801),
                    np.linspace(-5.0, 5.0, 1001),
                ]
            )
        )

    def violations(self, k_grid=None) -> list[str]:
        """What breaks no-arbitrage, in words; empty when none of the checks fails."""
        problems = []
        wing = self.b * (1.0 + abs(self.rho))
        if wing > LEE_MAX_SLOPE:
            problems.append(f"wing slope b(1+|rho|) = {wing:.6g} > {LEE_MAX_SLOPE} (Lee)")
        if self.min_total_variance <= 0:
            problems.append("total variance reaches zero")
        k = self.check_grid() if k_grid is None else np.asarray(k_grid, dtype=np.float64)
        g = self.durrleman_g(k)
        bad = g < 0
        if bad.any():
            problems.append(
                f"butterfly arbitrage: Durrleman g < 0 on {int(bad.sum())} of {k.size} "
                f"grid points (min {float(g.min()):.3g} at k = {float(k[g.argmin()]):.4g})"
            )
        return problems

    def is_arbitrage_free(self, k_grid=None) -> bool:
        return not self.violations(k_grid)


def default_smile(
    atm_vol: float, t_years: float, *, skew_z: float = DEFAULT_SKEW_Z, curvature_z: float = DEFAULT_CURVATURE_Z
) -> Smile:
    """The simulator's smile for one expiry around its ATM vol (``DEFAULT_ATM_VOL``).

    The shape is fixed in standardised moneyness z = k / (atm_vol sqrt(t)), so short expiries
    get steep smiles in k and long ones flat smiles, as markets do: skew = skew_z / sqrt(t),
    curvature = curvature_z / (atm_vol t), width = atm_vol sqrt(t). SVI's rho and the wing
    slopes in z are then the same for every expiry."""
    sqrt_t = math.sqrt(t_years)
    return Smile.from_atm(atm_vol, skew_z / sqrt_t, curvature_z / (atm_vol * t_years), t_years, width=atm_vol * sqrt_t)
