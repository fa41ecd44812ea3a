"""One measure per rule code: what the rule counts or compares, as of the trigger.

Each returns a ``Measure`` (a value and the records behind it), a ``Measure`` with value None
when the trader's history is too short to judge (the "insufficient history" band), or None
when the rule has nothing to say about this trigger (a structuring rule on a sign-in).
Ratios are rounded down, so a value just under a band's edge never rounds up into it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from .core import DEPOSIT, MOVEMENTS, SIGN_IN, TRADE, WITHDRAWAL, Context, Measure, Record, Rule

ZERO = Decimal(0)

STRUCTURING = "STRUCTURING"
RAPID_IN_OUT = "RAPID_IN_OUT"
VELOCITY = "VELOCITY"
LARGE_FIRST_DEPOSIT = "LARGE_FIRST_DEPOSIT"
DORMANT_REACTIVATED = "DORMANT_REACTIVATED"
FAN_IN_CONSOLIDATION = "FAN_IN_CONSOLIDATION"
SHARED_IP_DEVICE = "SHARED_IP_DEVICE"
HIGH_RISK_JURISDICTION = "HIGH_RISK_JURISDICTION"


def _ids(records) -> tuple[str, ...]:
    return tuple(r.id for r in records)


def structuring(rule: Rule, ctx: Context) -> Measure | None:
    """Deposits and withdrawals just under the reporting threshold within the window: the
    trigger must be one of them; the value is how many there are."""
    threshold = rule.param("threshold_usd")
    floor = threshold * (1 - rule.param("margin"))

    def near(record) -> bool:
        return floor <= record.usd < threshold

    if ctx.trigger.kind not in MOVEMENTS or not near(ctx.trigger):
        return None
    found = [r for r in ctx.within(rule.window, MOVEMENTS) if near(r)]
    return Measure(Decimal(len(found)), _ids(found))


def rapid_in_out(rule: Rule, ctx: Context) -> Measure | None:
    """A withdrawal soon after deposits with little trading in between: the value is the share
    of the window's deposits withdrawn again (1 = all of it)."""
    if ctx.trigger.kind != WITHDRAWAL:
        return None
    recent = ctx.within(rule.window)
    deposits = [r for r in recent if r.kind == DEPOSIT]
    if not deposits:
        return None
    deposited = sum((r.usd for r in deposits), ZERO)
    if deposited <= 0:
        return None
    since = deposits[0].at
    traded = sum((r.usd for r in recent if r.kind == TRADE and r.at >= since), ZERO)
    if traded >= deposited * rule.param("max_trade_ratio"):
        return None
    withdrawals = [r for r in recent if r.kind == WITHDRAWAL and r.at >= since]
    withdrawn = sum((r.usd for r in withdrawals), ZERO)
    share = min(withdrawn, deposited) / deposited
    return Measure(share.quantize(Decimal("0.0001"), rounding=ROUND_DOWN), _ids(deposits + withdrawals))


def velocity(rule: Rule, ctx: Context) -> Measure | None:
    """Money moved in the window against the trader's own average per window over the
    lookback before it. Too young an account is insufficient history."""
    if ctx.trigger.kind not in MOVEMENTS:
        return None
    start = ctx.joined_at or (ctx.records[0].at if ctx.records else ctx.trigger.at)
    if ctx.trigger.at - start < timedelta(days=int(rule.param("min_history_days"))):
        return Measure(None, (ctx.trigger.id,))
    window_start = ctx.trigger.at - rule.window
    lookback = timedelta(days=int(rule.param("lookback_days")))
    current = ctx.within(rule.window, MOVEMENTS)
    before = ctx.usd_between(MOVEMENTS, window_start - lookback, window_start)
    moved = sum((r.usd for r in current), ZERO)
    return Measure(velocity_value(rule, moved=moved, before=before), _ids(current))


def velocity_value(rule: Rule, *, moved: Decimal, before: Decimal) -> Decimal:
    """Velocity's number: ``moved`` (the USD moved in the window) against the average per
    window of ``before`` (the USD moved in the lookback before it), at least the rule's
    minimum baseline. The scan has the database work out both sums (``velocity_measure``)."""
    lookback = timedelta(days=int(rule.param("lookback_days")))
    windows = Decimal(lookback / rule.window)
    baseline = max(before / windows, rule.param("min_baseline_usd"))
    return (moved / baseline).quantize(Decimal("0.01"), rounding=ROUND_DOWN)


def velocity_measure(
    rule: Rule, *, trigger: Record, joined_at: datetime, moved: Decimal, before: Decimal, record_ids
) -> Measure:
    """``velocity`` of a movement from sums worked out elsewhere: ``moved`` and its
    ``record_ids`` over the window up to the trigger, ``before`` over the lookback before the
    window (the trader's account opened at ``joined_at``)."""
    if trigger.at - joined_at < timedelta(days=int(rule.param("min_history_days"))):
        return Measure(None, (trigger.id,))
    return Measure(velocity_value(rule, moved=moved, before=before), tuple(record_ids))


def large_first_deposit(rule: Rule, ctx: Context) -> Measure | None:
    """A new account's first deposit: the value is its amount. The window is how long an
    account counts as new."""
    if ctx.trigger.kind != DEPOSIT:
        return None
    if ctx.has_other_deposit():
        return None
    joined = ctx.joined_at or ctx.records[0].at
    if ctx.trigger.at - joined > rule.window:
        return None
    return Measure(ctx.trigger.usd, (ctx.trigger.id,))


def dormant_reactivated(rule: Rule, ctx: Context) -> Measure | None:
    """A movement after at least the window without any money activity: the value is its
    amount. An account with no earlier activity is new, not dormant."""
    if ctx.trigger.kind not in MOVEMENTS:
        return None
    last = ctx.last_activity()
    if last is None:
        return None
    if ctx.trigger.at - last.at < rule.window:
        return None
    return Measure(ctx.trigger.usd, (last.id, ctx.trigger.id))


def fan_in_consolidation(rule: Rule, ctx: Context) -> Measure | None:
    """Many small deposits in the window, then one withdrawal taking most of them out: the
    value is how many small deposits there were."""
    if ctx.trigger.kind != WITHDRAWAL:
        return None
    small_max = rule.param("small_max_usd")
    small = [r for r in ctx.within(rule.window, (DEPOSIT,)) if r.usd <= small_max]
    gathered = sum((r.usd for r in small), ZERO)
    if not small or ctx.trigger.usd < gathered * rule.param("consolidation_ratio"):
        return None
    return Measure(Decimal(len(small)), _ids([*small, ctx.trigger]))


def shared_ip_device(rule: Rule, ctx: Context) -> Measure | None:
    """A sign-in from an IP address or device that other accounts signed in from within the
    window: the value is how many other accounts."""
    if ctx.trigger.kind != SIGN_IN:
        return None
    start = ctx.trigger.at - rule.window
    ips = {ctx.trigger.ip} - {""}
    devices = {ctx.trigger.device} - {""}
    shared = [
        r
        for r in ctx.others
        if r.kind == SIGN_IN and r.user_id != ctx.user_id and r.at >= start and (r.ip in ips or r.device in devices)
    ]
    accounts = {r.user_id for r in shared}
    return Measure(Decimal(len(accounts)), _ids([ctx.trigger, *shared]))


def risky(record: Record, kyc_country: str, high_risk_countries) -> bool:
    """Whether a record is activity from a high-risk country (its own, else the trader's KYC one)."""
    country = record.country or kyc_country
    return bool(country) and country.upper() in high_risk_countries


def high_risk_jurisdiction(rule: Rule, ctx: Context) -> Measure | None:
    """Activity from a high-risk country (the settings' list): a sign-in located there, or
    anything by a trader whose KYC country is there. The value is how many such events in
    the window; the trigger must be one."""

    def at_risk(record) -> bool:
        return risky(record, ctx.kyc_country, ctx.high_risk_countries)

    if not at_risk(ctx.trigger):
        return None
    found = [r for r in ctx.within(rule.window) if at_risk(r)]
    return Measure(Decimal(len(found)), _ids(found))


MEASURES = {
    STRUCTURING: structuring,
    RAPID_IN_OUT: rapid_in_out,
    VELOCITY: velocity,
    LARGE_FIRST_DEPOSIT: large_first_deposit,
    DORMANT_REACTIVATED: dormant_reactivated,
    FAN_IN_CONSOLIDATION: fan_in_consolidation,
    SHARED_IP_DEVICE: shared_ip_device,
    HIGH_RISK_JURISDICTION: high_risk_jurisdiction,
}


# --- what each rule reads -------------------------------------------------------------------------
#
# For one trigger, how far back before it a rule reads the trader's records themselves (None:
# not at all). What a rule reads further back comes as ``Totals`` (``sums_needed``, the latest
# activity, the other-deposit answer), so evaluating one trigger loads a few days of records,
# not the rules' whole horizon.


def _on(kinds):
    return lambda rule, trigger, at_risk: rule.window if trigger.kind in kinds else None


READS = {
    STRUCTURING: _on(MOVEMENTS),
    RAPID_IN_OUT: _on((WITHDRAWAL,)),
    VELOCITY: _on(MOVEMENTS),  # the window itself; the lookback before it is a sum
    LARGE_FIRST_DEPOSIT: lambda rule, trigger, at_risk: None,  # the trigger and has_other_deposit
    DORMANT_REACTIVATED: lambda rule, trigger, at_risk: None,  # the trigger and last_activity
    FAN_IN_CONSOLIDATION: _on((WITHDRAWAL,)),
    SHARED_IP_DEVICE: lambda rule, trigger, at_risk: None,  # the trigger and the others' sign-ins
    HIGH_RISK_JURISDICTION: lambda rule, trigger, at_risk: rule.window if at_risk else None,
}


def reach(rules, trigger: Record, *, kyc_country: str = "", high_risk_countries=()) -> timedelta | None:
    """How far back before ``trigger`` the ``rules`` read the trader's own records (None when a
    rule's reach is not known here: then every record of the horizon is needed)."""
    at_risk = risky(trigger, (kyc_country or "").upper(), frozenset(c.upper() for c in high_risk_countries))
    longest = timedelta(0)
    for rule in rules:
        reads = READS.get(rule.code)
        if reads is None:
            return None
        window = reads(rule, trigger, at_risk)
        if window is not None:
            longest = max(longest, window)
    return longest


def sums_needed(rules, trigger: Record) -> list[tuple[tuple[str, ...], datetime, datetime]]:
    """The ``(kinds, start, end)`` sums that ``rules`` read as of ``trigger`` (``Totals.sums``)."""
    needed = []
    for rule in rules:
        if rule.code == VELOCITY and trigger.kind in MOVEMENTS:
            window_start = trigger.at - rule.window
            lookback = timedelta(days=int(rule.param("lookback_days")))
            needed.append((MOVEMENTS, window_start - lookback, window_start))
    return needed
