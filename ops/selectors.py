"""Reads of the monitor's state for the API, the staff console and the admin; the analytics'
daily aggregates as CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from trading.formatting import decimal_string, utc_string

from .models import CheckState, Incident


def health_report(*, hours: int = 24) -> dict:
    """Every check's current state and the incidents of the last ``hours`` (open ones
    whenever they began), newest first."""
    since = timezone.now() - timedelta(hours=hours)
    return {
        "checks": list(CheckState.objects.order_by("name")),
        "incidents": list(
            Incident.objects.filter(
                Q(started_at__gte=since) | Q(resolved_at__isnull=True) | Q(resolved_at__gte=since)
            ).order_by("-started_at", "-pk")
        ),
    }


def open_incident_count() -> int:
    return Incident.objects.filter(resolved_at__isnull=True).count()


AGGREGATE_COLUMNS = (
    "day",
    "symbol",
    "trades",
    "volume_base",
    "volume_quote",
    "open",
    "high",
    "low",
    "close",
    "orders_placed",
    "orders_cancelled",
    "fees_base",
    "fees_quote",
    "computed_at",
)


def daily_aggregates_csv(aggregates) -> str:
    """The aggregates as CSV, oldest day first: exact decimals as plain strings (no exponent,
    trailing zeros dropped), days as YYYY-MM-DD, ``computed_at`` in UTC ISO 8601."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AGGREGATE_COLUMNS)
    for row in aggregates.order_by("day", "symbol"):
        writer.writerow([_cell(getattr(row, column)) for column in AGGREGATE_COLUMNS])
    return out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_string(value)
    if isinstance(value, datetime):
        return utc_string(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
