from django.apps import AppConfig


class OpsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ops"
    verbose_name = "Operations"

    def ready(self):
        from trading import metrics, workers

        from . import tasks  # noqa: F401  (the beat's heartbeat task)
        from .metrics import OpsCollector

        metrics.register(OpsCollector())

        def run_monitor():
            from .monitor import monitor_singleton

            monitor_singleton(announce=lambda line: None).run()

        # Embedded mode: the monitor is a thread of the web process (stack mode: `run_monitor`).
        workers.register("monitor", run_monitor)
