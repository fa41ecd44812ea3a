"""Risk settings staff change: limit overrides and trading states. Usage is never stored here:
it is read from the rows order entry already has (open orders, balances, positions)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from trading.fields import ExactDecimalField

from .core import LIMITS, SCOPES, STATES


class RiskLimit(models.Model):
    """One override of a limit. The most specific row wins: the user's for this target, the
    user's for every target, the tier's for this target, the tier's, everyone's for this
    target, everyone's; with no row, the platform default in settings (``RISK_LIMITS``)."""

    name = models.CharField(max_length=40, choices=[(name, name) for name in LIMITS])
    target = models.CharField(
        max_length=40, blank=True, help_text="A symbol (BTC-USDT), an underlying or an asset (BTC); blank for all."
    )
    tier = models.PositiveSmallIntegerField(null=True, blank=True, help_text="A KYC tier; blank for every tier.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="risk_limits"
    )
    value = ExactDecimalField(help_text="In the limit's unit (a fraction for price bands: 0.05 is 5 %).")
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(tier__isnull=True) | Q(user__isnull=True), name="risk_limit_tier_or_user"
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="risk_limit_not_negative"),
        ]
        indexes = [models.Index(fields=["name", "target"])]

    def __str__(self):
        who = f"user {self.user_id}" if self.user_id else f"tier {self.tier}" if self.tier is not None else "everyone"
        return f"{self.name} {self.target or '*'} ({who}) = {self.value}"


class TradingState(models.Model):
    """A scope that is not ``active``: the platform, one symbol (spot pair or option
    underlying) or one user. No row means active."""

    scope = models.CharField(max_length=10, choices=[(scope, scope) for scope in SCOPES])
    target = models.CharField(max_length=40, blank=True, help_text="The symbol or the user id; blank for the platform.")
    state = models.CharField(max_length=12, choices=[(state, state) for state in STATES])
    reason = models.CharField(max_length=200)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "target"], name="risk_state_one_per_scope")]

    def __str__(self):
        return f"{self.scope} {self.target or '*'}: {self.state}"
