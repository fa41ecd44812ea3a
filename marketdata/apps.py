from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "marketdata"
    verbose_name = "Market data"

    def ready(self):
        from trading import workers

        from .feed_runner import feed_singleton

        # The lease code logs every state change; nothing more to announce in a thread.
        workers.register("feed", lambda: feed_singleton(announce=lambda line: None).run())
