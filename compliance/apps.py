from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from ledger import signals as ledger_signals

        from . import receivers, tasks  # noqa: F401  (task registration: the beat names compliance.*)

        # real-time AML: each evaluation is queued when the event's transaction commits
        ledger_signals.deposit_credited.connect(receivers.on_deposit_credited, dispatch_uid="compliance.aml_deposit")
        ledger_signals.withdrawal_requested.connect(
            receivers.on_withdrawal_requested, dispatch_uid="compliance.aml_withdrawal"
        )
        user_logged_in.connect(receivers.on_logged_in, dispatch_uid="compliance.aml_signin")

        # sanctions screening and the travel rule: on each withdrawal request, before anything is
        # held, and on each KYC submission once it commits
        from accounts import signals as account_signals
        from trading import checks

        from .sanctions import receivers as sanctions_receivers
        from .sanctions import tasks as sanctions_tasks  # noqa: F401  (task registration)
        from .sanctions.services import travel_rule_check, withdrawal_screen

        checks.register("withdrawal_validate", travel_rule_check)
        checks.register("withdrawal_screen", withdrawal_screen)
        # the trader's AML score: refused from the block score, held for review from the review one
        from .decisions import withdrawal_block, withdrawal_review

        checks.register("withdrawal_screen", withdrawal_block)
        checks.register("withdrawal_review", withdrawal_review)
        account_signals.kyc_submitted.connect(
            sanctions_receivers.on_kyc_submitted, dispatch_uid="compliance.sanctions_kyc"
        )
