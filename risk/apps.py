from django.apps import AppConfig


class RiskConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "risk"
    verbose_name = "Risk"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from accounts.signals import kyc_decided
        from trading import checks

        from . import services
        from .models import RiskLimit, TradingState

        # a withdrawal (in ledger, below this app) passes the daily limit
        checks.register("withdrawal", services.withdrawal_check)
        checks.provide("withdrawal_limits", services.withdrawal_limits)
        for model in (RiskLimit, TradingState):
            post_save.connect(_forget, sender=model, dispatch_uid=f"risk-forget-save-{model.__name__}")
            post_delete.connect(_forget, sender=model, dispatch_uid=f"risk-forget-delete-{model.__name__}")
        # a KYC decision changes the trader's tier, and with it their limits
        kyc_decided.connect(_forget, dispatch_uid="risk-forget-kyc")


def _forget(**_):
    """A limit or state changed: this process forgets its cache when the change commits
    (other processes within RISK_CACHE_SECONDS)."""
    from django.db import transaction

    from .selectors import cache_clear

    transaction.on_commit(cache_clear)
