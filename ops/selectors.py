"""Reads of the monitor's state for the API, the staff console and the admin."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

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
