"""The sanctions list as loaded (``manage.py sanctions_load FILE``): one row per listed person,
organisation or wallet holder, one per wallet address, and one per load."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class SanctionsListLoad(models.Model):
    """One load of the list: the file, its digest and what it held. The newest is in force."""

    source = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64)
    entities = models.PositiveIntegerField()
    addresses = models.PositiveIntegerField()
    loaded_at = models.DateTimeField(default=timezone.now)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        app_label = "compliance"
        verbose_name = "sanctions list load"
        ordering = ["-id"]

    def __str__(self):
        return f"{self.source} ({self.entities} entities, {self.addresses} addresses, {self.loaded_at:%Y-%m-%d %H:%M})"


class SanctionsEntity(models.Model):
    id = models.CharField(primary_key=True, max_length=200, help_text="the list's own id")
    schema = models.CharField(max_length=40)
    caption = models.CharField(max_length=500)
    names = models.JSONField(default=list)
    countries = models.JSONField(default=list)
    datasets = models.JSONField(default=list)

    class Meta:
        app_label = "compliance"
        verbose_name = "sanctioned entity"
        verbose_name_plural = "sanctioned entities"
        ordering = ["caption"]

    def __str__(self):
        return f"{self.caption} ({self.schema})"


class SanctionsAddress(models.Model):
    address = models.CharField(max_length=200, db_index=True, help_text="as networks compare it")
    currency = models.CharField(max_length=20, blank=True)
    entity = models.ForeignKey(SanctionsEntity, on_delete=models.CASCADE, related_name="wallets")

    class Meta:
        app_label = "compliance"
        verbose_name = "sanctioned address"

    def __str__(self):
        return f"{self.address} ({self.currency or '?'})"
