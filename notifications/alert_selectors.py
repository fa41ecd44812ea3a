"""Reads of price alerts."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import PriceAlert, PriceAlertStatus


def price_alert_list(*, user) -> QuerySet[PriceAlert]:
    """The trader's alerts that still exist (active or triggered), newest first."""
    return PriceAlert.objects.filter(user=user).exclude(status=PriceAlertStatus.DELETED).order_by("-created_at", "-id")
