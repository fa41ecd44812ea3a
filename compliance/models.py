"""Compliance reads every app and is read by none.

AML monitoring (rule versions, alerts, cases) lives here; its rules' pure core is
``compliance/rules``. The audit trail itself is the kernel's (``trading.models.AuditRecord``, written by
``trading.audit.audit_append``); compliance shows it to its staff in the admin through this
proxy, which keeps the admin address and the permissions it had when compliance owned it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from trading.models import AuditRecord as KernelAuditRecord


class AuditRecord(KernelAuditRecord):
    class Meta:
        proxy = True
        verbose_name = "audit record"


# --- AML monitoring -------------------------------------------------------------------------------


class AmlRuleVersion(models.Model):
    """One version of one rule, as data (compliance/rules/core.py ``Rule.as_data``). A change
    to a rule is a new version; the ``live`` one per code is the one evaluated."""

    code = models.CharField(max_length=40)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    definition = models.JSONField(help_text="window_seconds, weight, bands, params, insufficient_score")
    live = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=300, blank=True, help_text="why this version")

    class Meta:
        verbose_name = "AML rule version"
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="aml_rule_code_version"),
            models.UniqueConstraint(fields=["code"], condition=Q(live=True), name="aml_rule_one_live_version"),
        ]

    def __str__(self):
        return f"{self.code} v{self.version}{' (live)' if self.live else ''}"


class AmlSignIn(models.Model):
    """Where a trader signed in from (for the shared IP/device and jurisdiction rules): the
    device is a digest of the browser's user agent, the country the edge's country header."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    device = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=2, blank=True)

    class Meta:
        verbose_name = "AML sign-in"
        indexes = [
            models.Index(fields=["user", "at"], name="aml_signin_user_at"),
            models.Index(fields=["ip", "at"], name="aml_signin_ip_at"),
            models.Index(fields=["device", "at"], name="aml_signin_device_at"),
        ]

    def __str__(self):
        return f"sign-in {self.user_id} {self.ip or '?'} at {self.at:%Y-%m-%d %H:%M}"


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    ESCALATED = "escalated", "Escalated"
    CLEARED = "cleared", "Cleared"
    SAR_FILED = "sar_filed", "SAR filed"


OPEN_STATUSES = (CaseStatus.OPEN, CaseStatus.ESCALATED)


class AmlCase(models.Model):
    """A trader under review: the alerts that put them over the threshold and every alert
    since, until staff clear it or file a SAR. One open case per trader at a time."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="aml_cases")
    status = models.CharField(max_length=10, choices=CaseStatus.choices, default=CaseStatus.OPEN, db_index=True)
    score = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_note = models.TextField(blank=True)
    account_frozen = models.BooleanField(default=False)

    class Meta:
        verbose_name = "AML case"
        ordering = ["-score", "opened_at"]
        indexes = [models.Index(fields=["status", "-score"], name="aml_case_inbox")]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(status__in=["open", "escalated"]), name="aml_case_one_open_per_user"
            )
        ]

    def __str__(self):
        return f"AML case {self.pk} ({self.status}, score {self.score})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class AmlAlert(models.Model):
    """One rule's hit on one trader: the rule version and band, the score, and the records
    (deposits, withdrawals, trades, sign-ins) that made it. ``at`` is the trigger's time."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="aml_alerts")
    rule_code = models.CharField(max_length=40)
    rule_version = models.PositiveIntegerField()
    band = models.CharField(max_length=40)
    score = models.PositiveSmallIntegerField()
    weighted_score = models.DecimalField(max_digits=8, decimal_places=2)
    value = models.DecimalField(max_digits=30, decimal_places=8, null=True, blank=True)
    transactions = models.JSONField(default=list, help_text="ids of the records behind the alert")
    trigger = models.CharField(max_length=140)
    at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=[("realtime", "Real time"), ("scan", "Scan")])
    fingerprint = models.CharField(max_length=64, unique=True)
    case = models.ForeignKey(AmlCase, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "AML alert"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["user", "rule_code", "at"], name="aml_alert_user_rule_at"),
            models.Index(fields=["rule_code", "-at"], name="aml_alert_rule_at"),
        ]

    def __str__(self):
        return f"{self.rule_code} v{self.rule_version} {self.band} ({self.score}) user {self.user_id}"


class AmlCaseComment(models.Model):
    case = models.ForeignKey(AmlCase, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "AML case comment"
        ordering = ["at", "id"]

    def __str__(self):
        return f"comment on case {self.case_id} at {self.at:%Y-%m-%d %H:%M}"


# the sanctions list (compliance/sanctions/): its models live with its code
from .sanctions.models import SanctionsAddress, SanctionsEntity, SanctionsListLoad  # noqa: E402, F401
