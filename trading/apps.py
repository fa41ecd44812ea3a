from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"
    verbose_name = "Platform"

    def ready(self):
        from . import audit_admin, workers
        from .beat import run_embedded_beat

        workers.register("beat", run_embedded_beat)
        audit_admin.install()  # staff console changes go to the audit trail
