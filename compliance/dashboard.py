"""The compliance dashboard's figures (admin → Compliance → Dashboard): open cases by status
and age against the review SLA, alerts per rule, sanctions hits and travel-rule withdrawals.
Every figure is one aggregate query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from ledger.models import Withdrawal

from .models import OPEN_STATUSES, AmlAlert, AmlCase
from .sanctions.models import SanctionsListLoad

WINDOW = timedelta(days=30)


@dataclass
class Dashboard:
    now: datetime
    sla_hours: int
    open_cases: int
    escalated: int
    unassigned: int
    over_sla: int
    oldest_open_at: datetime | None
    top_score: object
    closed_by_status: dict[str, int]
    alerts_by_rule: list[dict]
    sanctions_hits: int
    sanctions_list: SanctionsListLoad | None
    travel_rule_withdrawals: int

    @property
    def oldest_age_hours(self) -> float | None:
        if self.oldest_open_at is None:
            return None
        return round((self.now - self.oldest_open_at).total_seconds() / 3600, 1)


def compliance_dashboard(*, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    since = now - WINDOW
    sla = settings.AML_CASE_SLA_HOURS
    cases = AmlCase.objects.filter(status__in=OPEN_STATUSES).aggregate(
        open=Count("id"),
        escalated=Count("id", filter=Q(status="escalated")),
        unassigned=Count("id", filter=Q(assignee__isnull=True)),
        over_sla=Count("id", filter=Q(opened_at__lt=now - timedelta(hours=sla))),
        oldest=Min("opened_at"),
        top=Max("score"),
    )
    closed = dict(
        AmlCase.objects.filter(closed_at__gte=since)
        .exclude(status__in=OPEN_STATUSES)
        .values_list("status")
        .annotate(n=Count("id"))
    )
    by_rule = list(
        AmlAlert.objects.filter(at__gte=since)
        .values("rule_code", "band")
        .annotate(alerts=Count("id"), traders=Count("user", distinct=True), cases=Count("case", distinct=True))
        .order_by("rule_code", "band")
    )
    return Dashboard(
        now=now,
        sla_hours=sla,
        open_cases=cases["open"],
        escalated=cases["escalated"],
        unassigned=cases["unassigned"],
        over_sla=cases["over_sla"],
        oldest_open_at=cases["oldest"],
        top_score=cases["top"],
        closed_by_status=closed,
        alerts_by_rule=by_rule,
        sanctions_hits=AmlAlert.objects.filter(rule_code="sanctions", at__gte=since).count(),
        sanctions_list=SanctionsListLoad.objects.order_by("-id").first(),
        travel_rule_withdrawals=Withdrawal.objects.filter(created_at__gte=since).exclude(beneficiary={}).count(),
    )
