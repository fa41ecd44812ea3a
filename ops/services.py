"""Writes of the monitor (each round's outcomes, incidents, maintenance windows, heartbeats)
and of the analytics (the daily aggregates)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from marketdata.services import SPOT_MARKETS
from orders.models import SpotOrder, SpotStatus, SpotTrade
from trading.audit import audit_append
from trading.errors import ValidationFailed
from trading.leases import fenced

from . import rules
from .models import CheckState, DailyAggregate, Heartbeat, Incident, MaintenanceWindow

LEASE = "monitor"


@dataclass(frozen=True)
class Outcome:
    check: str
    ok: bool
    detail: dict


@dataclass(frozen=True)
class Alert:
    """One message to send: an incident opened (``kind="failed"``) or cleared (``"recovered"``)."""

    kind: str
    incident_id: int
    check: str
    started_at: object
    resolved_at: object
    detail: dict


# Checks of an age against a limit: the limit already waits out a slow moment, so the first
# probe past it fails the check (two more rounds would miss the 15 s).
AGE_CHECKS = frozenset({"beat"})


def rule(check: str = "") -> rules.Rule:
    fail_after = 1 if check in AGE_CHECKS else settings.MONITOR_FAIL_AFTER
    return rules.Rule(fail_after=fail_after, recover_after=settings.MONITOR_RECOVER_AFTER)


def maintenance_active(now=None) -> MaintenanceWindow | None:
    now = now or timezone.now()
    return MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now).order_by("-ends_at").first()


def round_record(*, outcomes: list[Outcome], epoch: int, holder: str, now=None) -> list[Alert]:
    """Apply one round of probes: each check's state, the incidents they open and close.
    Returns the alerts to send (each incident alerts once, and says once that it cleared;
    none while a maintenance window is on — an incident still open when the window ends
    alerts then). Fenced by the monitor's lease; opens its own transaction."""
    now = now or timezone.now()
    alerts: list[Alert] = []
    with transaction.atomic(durable=True), fenced(LEASE, epoch, holder):
        silent = maintenance_active(now) is not None
        stored = {row.name: row for row in CheckState.objects.filter(name__in=[o.check for o in outcomes])}
        for outcome in outcomes:
            row = stored.get(outcome.check)
            before = (
                rules.CheckStatus(row.status, row.since, row.failures, row.successes) if row else rules.CheckStatus()
            )
            after, transition = rules.observe(before, outcome.ok, now, rule(outcome.check))
            values = {
                "status": after.status,
                "since": after.since,
                "failures": after.failures,
                "successes": after.successes,
                "detail": outcome.detail,
                "checked_at": now,
            }
            CheckState.objects.update_or_create(name=outcome.check, defaults=values)
            if transition == rules.FAILED:
                Incident.objects.get_or_create(
                    check_name=outcome.check,
                    resolved_at=None,
                    defaults={"started_at": now, "detail": outcome.detail, "silenced": silent},
                )
            elif transition == rules.RECOVERED:
                for incident in Incident.objects.filter(check_name=outcome.check, resolved_at=None):
                    incident.resolved_at = now
                    if incident.alerted_at is not None:
                        incident.recovery_sent_at = now
                        alerts.append(_alert("recovered", incident))
                    incident.save(update_fields=["resolved_at", "recovery_sent_at"])
        if not silent:
            for incident in Incident.objects.filter(resolved_at=None, alerted_at=None).order_by("pk"):
                incident.alerted_at = now
                incident.save(update_fields=["alerted_at"])
                alerts.append(_alert("failed", incident))
    return alerts


def _alert(kind: str, incident: Incident) -> Alert:
    return Alert(
        kind=kind,
        incident_id=incident.pk,
        check=incident.check_name,
        started_at=incident.started_at,
        resolved_at=incident.resolved_at,
        detail=incident.detail,
    )


def maintenance_declare(*, minutes: float, reason: str, user=None, starts_at=None) -> MaintenanceWindow:
    """A maintenance window from now (or ``starts_at``) for ``minutes``: the monitor keeps
    probing and recording but sends no alert meanwhile. Joins the caller's transaction if
    there is one (the admin's add form runs in one)."""
    reason = (reason or "").strip()
    problems = {}
    try:
        minutes = float(minutes)
    except (TypeError, ValueError):
        minutes = 0.0
    if not 0 < minutes <= 24 * 60:
        problems["minutes"] = "between 0 and 1440"
    if not reason:
        problems["reason"] = "required"
    if problems:
        raise ValidationFailed("A maintenance window needs a length and a reason.", fields=problems)
    starts_at = starts_at or timezone.now()
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes), reason=reason[:200], created_by=user
        )
        audit_append(
            actor=user,
            action="ops.maintenance_declared",
            target=window,
            data={"minutes": minutes, "reason": window.reason},
        )
    return window


def maintenance_end(*, window: MaintenanceWindow, user=None) -> MaintenanceWindow:
    """End a window now (alerts resume with the next round)."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        if window.ends_at > now:
            window.ends_at = max(now, window.starts_at)
            window.save(update_fields=["ends_at"])
            audit_append(actor=user, action="ops.maintenance_ended", target=window, data={})
    return window


def incident_record_after(*, check: str, started_at, resolved_at, detail: dict) -> Incident:
    """Record an incident the monitor could not record while it lasted (the database was
    the one down), its alert and recovery as sent."""
    with transaction.atomic(durable=True):
        return Incident.objects.create(
            check_name=check,
            started_at=started_at,
            resolved_at=resolved_at,
            detail=detail,
            alerted_at=started_at,
            recovery_sent_at=resolved_at,
        )


def heartbeat_stamp(*, name: str) -> None:
    """Stamp ``name`` alive. Beat runs it in its own loop, so a stamp that cannot get its row
    (a lock held by a stuck transaction) gives up after ``HEARTBEAT_TIMEOUT_MS`` instead of
    holding beat's schedule: the stamp goes stale and the monitor says so."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(settings.HEARTBEAT_TIMEOUT_MS)])
        Heartbeat.objects.update_or_create(name=name, defaults={"at": timezone.now()})


# --- analytics: the daily aggregates ---------------------------------------------------------


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, dtime.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def daily_aggregate_compute(*, day: date, now=None) -> list[DailyAggregate]:
    """Recompute every spot symbol's aggregate of ``day`` (UTC) from the trades and orders
    tables and write it over whatever the day held (an upsert): running it again, or for a
    day still going on, is harmless. Three aggregate queries on time-indexed ranges and a
    lookup of the open and close by (symbol, seq); a listed symbol with nothing that day gets
    a row of zeros."""
    start, end = _day_bounds(day)
    buyer_pays, seller_pays = Q(taker_side="buy"), Q(taker_side="sell")
    traded = {
        row["symbol"]: row
        for row in SpotTrade.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("symbol")
        .annotate(
            trades=Count("id"),
            volume_base=Sum("quantity"),
            volume_quote=Sum("quote_amount"),
            high=Max("price"),
            low=Min("price"),
            first_seq=Min("seq"),
            last_seq=Max("seq"),
            # each side pays in the asset it receives: the buyer in base, the seller in quote
            taker_base=Sum("taker_fee", filter=buyer_pays),
            maker_base=Sum("maker_fee", filter=seller_pays),
            taker_quote=Sum("taker_fee", filter=seller_pays),
            maker_quote=Sum("maker_fee", filter=buyer_pays),
        )
        .order_by()
    }
    # open and close: the day's first and last trade by engine sequence, through (symbol, seq)
    ends = Q(pk__in=[])
    for symbol, row in traded.items():
        ends |= Q(symbol=symbol, seq__in=(row["first_seq"], row["last_seq"]))
    prices = {
        (symbol, seq): price
        for symbol, seq, price in SpotTrade.objects.filter(ends).values_list("symbol", "seq", "price")
    }
    placed = dict(
        SpotOrder.objects.filter(created_at__gte=start, created_at__lt=end, parent__isnull=True)
        .values_list("symbol")
        .annotate(n=Count("id"))
        .order_by()
    )
    cancelled = dict(
        SpotOrder.objects.filter(
            closed_at__gte=start, closed_at__lt=end, status=SpotStatus.CANCELLED, parent__isnull=True
        )
        .values_list("symbol")
        .annotate(n=Count("id"))
        .order_by()
    )
    now = now or timezone.now()
    zero = Decimal(0)
    rows = []
    for symbol in sorted(set(SPOT_MARKETS) | set(traded) | set(placed) | set(cancelled)):
        t = traded.get(symbol, {})
        rows.append(
            DailyAggregate(
                symbol=symbol,
                day=day,
                trades=t.get("trades", 0),
                volume_base=t.get("volume_base") or zero,
                volume_quote=t.get("volume_quote") or zero,
                open=prices.get((symbol, t.get("first_seq"))),
                high=t.get("high"),
                low=t.get("low"),
                close=prices.get((symbol, t.get("last_seq"))),
                orders_placed=placed.get(symbol, 0),
                orders_cancelled=cancelled.get(symbol, 0),
                fees_base=(t.get("taker_base") or zero) + (t.get("maker_base") or zero),
                fees_quote=(t.get("taker_quote") or zero) + (t.get("maker_quote") or zero),
                computed_at=now,
            )
        )
    fields = [f.name for f in DailyAggregate._meta.concrete_fields if f.name not in ("id", "symbol", "day")]
    with transaction.atomic(durable=True):
        DailyAggregate.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["symbol", "day"], update_fields=fields
        )
    return rows


def daily_aggregates_compute(*, first: date, last: date, progress=None) -> int:
    """Every day from ``first`` to ``last`` (inclusive), one transaction each; ``progress``
    is called with each day and its rows. Returns the number of days written."""
    days = 0
    day = first
    while day <= last:
        rows = daily_aggregate_compute(day=day)
        if progress is not None:
            progress(day, rows)
        days += 1
        day += timedelta(days=1)
    return days
