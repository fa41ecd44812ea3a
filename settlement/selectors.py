"""Settlement reads: the ops listing, and the figures /metrics exposes."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from .models import ACTIVE_STATES, Counter, Kind, Settlement, SettlementStep, State, StepStatus


def settlements_list(*, order_id: str | None = None, state: str | None = None) -> QuerySet[Settlement]:
    rows = Settlement.objects.prefetch_related("steps").order_by("-id")
    if order_id:
        # An order id alone means an option order; a full ref (option_exercise:7) is exact.
        rows = rows.filter(ref=order_id if ":" in order_id else f"option_order:{order_id}")
    if state:
        rows = rows.filter(state=state)
    return rows


def settlements_unfinished(*, refs: list[str]) -> dict[int, list[int]]:
    """The active settlements of these event keys, by their current step: what a redelivered
    intake message (its worker died mid-batch) picks up again at once instead of after the
    idle timeout."""
    by_step: dict[int, list[int]] = {}
    rows = (
        Settlement.objects.filter(ref__in=list(refs), state__in=ACTIVE_STATES).order_by("id").values_list("step", "id")
    )
    for step, settlement_id in rows:
        by_step.setdefault(step, []).append(settlement_id)
    return by_step


def venue_busy() -> bool:
    """Does an executor hold a live claim at step 3? Then the venue stage is working
    through what waits there (oldest first, claiming again while work waits): a
    settlement waiting behind a backlog is not stalled."""
    return Settlement.objects.filter(state=State.RUNNING, step=3, claimed_until__gt=timezone.now()).exists()


def settlement_counts() -> dict[str, int]:
    counts = dict(Settlement.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    return {state: counts.get(state, 0) for state in State.values}


def counters() -> dict[str, int]:
    return dict(Counter.objects.values_list("name", "value"))


def _histogram(sql: str, buckets: tuple[float, ...], params: list | None = None) -> tuple[list[int], float, int]:
    """Cumulative bucket counts, sum and count of a latency (seconds) selected by ``sql``."""
    cases = ", ".join(f"SUM(CASE WHEN v <= {b} THEN 1 ELSE 0 END)" for b in buckets)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {cases}, COALESCE(SUM(v), 0), COUNT(*) FROM ({sql}) AS latencies", params or [])
        row = cursor.fetchone()
    return [int(x or 0) for x in row[: len(buckets)]], float(row[-2] or 0), int(row[-1] or 0)


def _seconds(end: str, start: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def settled_latency_histogram(buckets) -> tuple[list[int], float, int]:
    table = Settlement._meta.db_table
    return _histogram(
        f"SELECT {_seconds('settled_at', 'event_created_at')} AS v FROM {table} WHERE state = %s",
        buckets,
        [State.SETTLED],
    )


def step_latency_histograms(buckets) -> dict[int, tuple[list[int], float, int]]:
    table = SettlementStep._meta.db_table
    return {
        step: _histogram(
            f"SELECT {_seconds('finished_at', 'started_at')} AS v FROM {table} WHERE step = %s AND status = %s",
            buckets,
            [step, StepStatus.DONE],
        )
        for step in (1, 2, 3, 4)
    }


def slippage_histogram(buckets) -> tuple[list[int], float, int]:
    table = Settlement._meta.db_table
    return _histogram(f"SELECT slippage_bps AS v FROM {table} WHERE slippage_bps IS NOT NULL", buckets)


def hedge_held() -> dict[str, Decimal]:
    """Per underlying, what the swaps bought at the venue for opening buys less what they sold
    for closes and exercises (step 3 done: ``filled_qty`` set). The options counter's exposure
    report reads it through ``orders.options.exposure.hedge_register``."""
    found: dict[str, Decimal] = {}
    rows = (
        Settlement.objects.filter(filled_qty__isnull=False)
        .values("underlying", "kind")
        .annotate(qty=Sum("filled_qty"))
        .values_list("underlying", "kind", "qty")
    )
    for underlying, kind, qty in rows:
        signed = qty if kind == Kind.OPEN else -qty
        found[underlying] = found.get(underlying, Decimal(0)) + signed
    return found
