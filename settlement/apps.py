from django.apps import AppConfig


class SettlementConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "settlement"
    verbose_name = "Settlement"

    def ready(self):
        from trading import workers

        from . import health, tasks  # noqa: F401  (readiness checks, task registration)
        from .relay import relay_singleton

        def run_relay():
            singleton = relay_singleton(announce=lambda line: None)
            workers.set_waker("relay", singleton.wake)
            singleton.run()

        workers.register("relay", run_relay)

        from trading import metrics as platform_metrics

        from .metrics import SettlementCollector

        platform_metrics.register(SettlementCollector())

        # the options counter's exposure report (orders, below this app) shows the hedge held
        from orders.options.exposure import hedge_register

        from .selectors import hedge_held

        hedge_register(hedge_held)
