"""The rules as shipped: version 1 of each. The database holds the versions in force (seeded
from these by a migration); a change to a rule is a new version there, never an edit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from . import measures as m
from .core import Band, Rule

DAY = timedelta(days=1)

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        code=m.STRUCTURING,
        version=1,
        title="Several deposits or withdrawals just under the reporting threshold",
        window=3 * DAY,
        weight=D("1"),
        params={"threshold_usd": "10000", "margin": "0.10"},
        bands=(Band("several", D(3), 40), Band("many", D(5), 70)),
    ),
    Rule(
        code=m.RAPID_IN_OUT,
        version=1,
        title="Deposit withdrawn again within hours with little trading",
        window=DAY,
        weight=D("1"),
        params={"max_trade_ratio": "0.25"},
        bands=(Band("most", D("0.5"), 30), Band("all", D("0.9"), 60)),
    ),
    Rule(
        code=m.VELOCITY,
        version=1,
        title="Money moved in a day against the trader's own history",
        window=DAY,
        weight=D("1"),
        params={"lookback_days": 90, "min_history_days": 30, "min_baseline_usd": "100"},
        bands=(Band("5x", D(5), 30), Band("10x", D(10), 60)),
    ),
    Rule(
        code=m.LARGE_FIRST_DEPOSIT,
        version=1,
        title="Large first deposit into a new account",
        window=30 * DAY,
        weight=D("1"),
        params={},
        bands=(Band("large", D(10000), 40), Band("very_large", D(50000), 70)),
    ),
    Rule(
        code=m.DORMANT_REACTIVATED,
        version=1,
        title="Dormant account reactivated with a large movement",
        window=180 * DAY,
        weight=D("1"),
        params={},
        bands=(Band("large", D(5000), 40), Band("very_large", D(25000), 70)),
    ),
    Rule(
        code=m.FAN_IN_CONSOLIDATION,
        version=1,
        title="Many small deposits, then one withdrawal of most of them",
        window=7 * DAY,
        weight=D("1"),
        params={"small_max_usd": "1000", "consolidation_ratio": "0.8"},
        bands=(Band("many", D(10), 40), Band("very_many", D(20), 70)),
    ),
    Rule(
        code=m.SHARED_IP_DEVICE,
        version=1,
        title="One IP address or device signing in to several accounts",
        window=30 * DAY,
        weight=D("1"),
        params={},
        bands=(Band("few", D(2), 30), Band("many", D(5), 70)),
    ),
    Rule(
        code=m.HIGH_RISK_JURISDICTION,
        version=1,
        title="Activity from a high-risk jurisdiction",
        window=30 * DAY,
        weight=D("1"),
        params={},
        bands=(Band("seen", D(1), 30), Band("repeated", D(5), 60)),
    ),
)
