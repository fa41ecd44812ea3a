from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self):
        from trading import workers

        # The signal receivers connect, the delivery tasks (queued by name) register.
        from . import receivers, tasks  # noqa: F401
        from .alert_services import run_watcher

        # Embedded mode: the price alert watcher is a thread beside the engines and the feed
        # whose ticks it evaluates (stack mode: `run_alerts`).
        workers.register("price-alerts", run_watcher)
