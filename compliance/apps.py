from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self):
        from . import receivers  # connects the audit trail's signal receivers

        receivers.install_bulk_admin_log_hook()
