from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "portfolio"
    verbose_name = "Portfolio"

    def ready(self):
        from trading import workers

        from . import tasks  # (task registration: the beat names portfolio.tasks.*)

        # The embedded mode catches up on start (on a fresh install: backfills from the
        # ledger), so the equity curve is there before the first midnight.
        workers.register("portfolio-snapshots", tasks.snapshots_at_start)
