"""The AML rules engine: rules are data, evaluation is plain Python over plain records.

A rule is a code and a version with its window, weight, parameters and bands. Its measure
(one function per code, in ``measures``) reads the trader's records as of one event (the
*trigger*: a deposit, a withdrawal, a large trade or a sign-in) and answers a number and the
records behind it, or ``INSUFFICIENT`` when the trader's history is too short to judge, or
nothing when the rule does not apply to that event. The bands turn the number into a band
and a score: the highest band whose lower edge the number reaches (edges are inclusive).

Nothing here imports Django: the service feeds records in and stores what comes out.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

# Kinds of record.
DEPOSIT = "deposit"
WITHDRAWAL = "withdrawal"
TRADE = "trade"
SIGN_IN = "sign_in"
MOVEMENTS = (DEPOSIT, WITHDRAWAL)
KINDS = (DEPOSIT, WITHDRAWAL, TRADE, SIGN_IN)

INSUFFICIENT_HISTORY = "insufficient_history"


@dataclass(frozen=True, slots=True)
class Record:
    """One thing a trader did. ``usd`` is its value in USD (USDT one to one); a sign-in has
    none. ``ip``, ``device`` and ``country`` are known for sign-ins (country also from KYC)."""

    id: str
    user_id: int
    kind: str
    at: datetime
    usd: Decimal = Decimal(0)
    ip: str = ""
    device: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class Band:
    """Values at or above ``lower`` fall in this band (until the next band's lower edge)."""

    label: str
    lower: Decimal
    score: int


@dataclass(frozen=True)
class Rule:
    code: str
    version: int
    title: str
    window: timedelta
    weight: Decimal
    bands: tuple[Band, ...]
    params: dict[str, Any] = field(default_factory=dict)
    # the score of the "insufficient history" band (usually 0: no alert, but it is recorded
    # in a backtest and a scan's counts)
    insufficient_score: int = 0

    def param(self, name: str) -> Decimal:
        """A numeric parameter (converted once per rule: a scan reads them per candidate)."""
        converted = self._converted.get(name)
        if converted is None:
            converted = self._converted[name] = Decimal(str(self.params[name]))
        return converted

    @cached_property
    def _converted(self) -> dict[str, Decimal]:
        return {}

    def band_for(self, value: Decimal) -> Band | None:
        found = None
        for band in _in_order(self.bands):
            if value >= band.lower:
                found = band
        return found

    def as_data(self) -> dict:
        """The rule as stored (JSON-safe: Decimals as strings)."""
        return {
            "code": self.code,
            "version": self.version,
            "title": self.title,
            "window_seconds": int(self.window.total_seconds()),
            "weight": str(self.weight),
            "bands": [{"label": b.label, "lower": str(b.lower), "score": b.score} for b in self.bands],
            "params": {key: str(value) if isinstance(value, Decimal) else value for key, value in self.params.items()},
            "insufficient_score": self.insufficient_score,
        }

    @classmethod
    def from_data(cls, data: dict) -> Rule:
        return cls(
            code=data["code"],
            version=int(data["version"]),
            title=data.get("title", ""),
            window=timedelta(seconds=int(data["window_seconds"])),
            weight=Decimal(str(data["weight"])),
            bands=tuple(Band(b["label"], Decimal(str(b["lower"])), int(b["score"])) for b in data["bands"]),
            params=dict(data.get("params") or {}),
            insufficient_score=int(data.get("insufficient_score", 0)),
        )


@lru_cache(maxsize=256)
def _in_order(bands: tuple[Band, ...]) -> tuple[Band, ...]:
    """A rule's bands by lower edge (worked out once per set of bands: a scan scores many hits)."""
    return tuple(sorted(bands, key=lambda b: b.lower))


@dataclass(frozen=True, slots=True)
class Measure:
    """What a rule measured: ``value`` None means insufficient history."""

    value: Decimal | None
    record_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    rule_code: str
    rule_version: int
    band: str
    score: int
    weighted: Decimal
    value: Decimal | None
    record_ids: tuple[str, ...]
    trigger_id: str
    at: datetime


@dataclass(frozen=True)
class Totals:
    """What the store worked out beside the records near the trigger, so that a rule looking
    further back than those reads a number instead of records: USD sums keyed by
    ``(kinds, start, end)`` (records of those kinds from ``start`` to before ``end``), the
    trader's latest money activity (not a sign-in) before the trigger, and whether the
    trader has a deposit other than the trigger. ``measures.reach`` and ``measures.sums_needed``
    say what to work out."""

    sums: dict[tuple[tuple[str, ...], datetime, datetime], Decimal] = field(default_factory=dict)
    last_activity: Record | None = None
    other_deposit: bool = False


class Context:
    """A trader's records in time order, as of one trigger, and what the rules need beside.

    ``records`` are the trader's own (every kind, in time order), ``others`` other traders' sign-ins that
    share an IP or a device with this trader's, ``kyc_country`` the trader's declared country,
    ``joined_at`` when the account was opened, ``high_risk_countries`` the settings' list.
    With ``totals``, ``records`` need only reach as far back as ``measures.reach`` says: the
    sums, the latest activity and the other-deposit answer come from ``totals``.
    """

    def __init__(
        self,
        *,
        user_id: int,
        records: Sequence[Record],
        trigger: Record,
        joined_at: datetime | None = None,
        kyc_country: str = "",
        others: Sequence[Record] = (),
        high_risk_countries: Iterable[str] = (),
        totals: Totals | None = None,
    ):
        self.user_id = user_id
        self.totals = totals
        self.trigger = trigger
        # only what had happened by the trigger (``records`` are in time order)
        self.records = records[: bisect_right(records, trigger.at, key=_at)]
        self.joined_at = joined_at
        self.kyc_country = (kyc_country or "").upper()
        self.others = [r for r in others if r.at <= trigger.at]
        self.high_risk_countries = frozenset(c.upper() for c in high_risk_countries)

    def within(self, window: timedelta, kinds: Iterable[str] = KINDS) -> list[Record]:
        """The trader's records of ``kinds`` from ``window`` before the trigger to it."""
        kinds = tuple(kinds)
        first = bisect_left(self.records, self.trigger.at - window, key=_at)
        return [r for r in self.records[first:] if r.kind in kinds]

    def usd_between(self, kinds: Iterable[str], start: datetime, end: datetime) -> Decimal:
        """The USD value of the trader's records of ``kinds`` from ``start`` to before ``end``."""
        kinds = tuple(kinds)
        if self.totals is not None and (kinds, start, end) in self.totals.sums:
            return self.totals.sums[(kinds, start, end)]
        first, last = bisect_left(self.records, start, key=_at), bisect_left(self.records, end, key=_at)
        return sum((r.usd for r in self.records[first:last] if r.kind in kinds), Decimal(0))

    def last_activity(self) -> Record | None:
        """The trader's latest money activity (not a sign-in) before the trigger."""
        if self.totals is not None:
            return self.totals.last_activity
        for r in reversed(self.records):  # in time order: the first from the end is the latest
            if r.kind != SIGN_IN and r.at < self.trigger.at and r.id != self.trigger.id:
                return r
        return None

    def has_other_deposit(self) -> bool:
        """Whether the trader has a deposit by the trigger other than the trigger."""
        if self.totals is not None:
            return self.totals.other_deposit
        return any(r.kind == DEPOSIT and r.id != self.trigger.id for r in self.records)


def _at(record: Record) -> datetime:
    return record.at


MeasureFn = Callable[[Rule, Context], Measure | None]


def evaluate(rules: Iterable[Rule], context: Context, measures: dict[str, MeasureFn]) -> list[Hit]:
    """Every rule's verdict on the trigger: a hit per rule that scored above zero (the
    insufficient-history band included when its score is), in the order of ``rules``."""
    hits = []
    for rule in rules:
        measure_fn = measures.get(rule.code)
        if measure_fn is None:
            continue
        measured = measure_fn(rule, context)
        if measured is None:
            continue
        hit = score(rule, measured, context.trigger)
        if hit is not None and hit.score > 0:
            hits.append(hit)
    return hits


def score(rule: Rule, measured: Measure, trigger: Record) -> Hit | None:
    if measured.value is None:
        label, points = INSUFFICIENT_HISTORY, rule.insufficient_score
    else:
        band = rule.band_for(measured.value)
        if band is None:
            return None
        label, points = band.label, band.score
    return Hit(
        rule_code=rule.code,
        rule_version=rule.version,
        band=label,
        score=points,
        weighted=(rule.weight * points).quantize(Decimal("0.01")),
        value=measured.value,
        record_ids=tuple(sorted(set(measured.record_ids))),
        trigger_id=trigger.id,
        at=trigger.at,
    )


def total_score(hits: Iterable[Hit]) -> Decimal:
    """A trader's score: per rule, its strongest weighted hit; summed over rules."""
    best: dict[str, Decimal] = {}
    for hit in hits:
        best[hit.rule_code] = max(best.get(hit.rule_code, Decimal(0)), hit.weighted)
    return sum(best.values(), Decimal(0))


@dataclass(frozen=True, slots=True)
class Raised:
    """An alert already raised for the trader (for suppression)."""

    rule_code: str
    score: int
    at: datetime


def suppress(hits: Iterable[Hit], raised: Iterable[Raised], windows: dict[str, timedelta]) -> list[Hit]:
    """Drop the hits that tell nothing new: the same rule already raised for the trader at
    an equal or higher score within the rule's window before the hit. A hit in a higher band
    still goes through (the situation got worse)."""
    by_rule: dict[str, list[Raised]] = {}
    for r in raised:
        by_rule.setdefault(r.rule_code, []).append(r)
    kept = []
    for hit in hits:
        window = windows.get(hit.rule_code, timedelta(0))
        earlier = by_rule.setdefault(hit.rule_code, [])
        if any(r.score >= hit.score and hit.at - window <= r.at <= hit.at for r in earlier):
            continue
        kept.append(hit)
        earlier.append(Raised(hit.rule_code, hit.score, hit.at))
    return kept
