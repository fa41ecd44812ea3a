from django.apps import AppConfig


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"
    verbose_name = "Orders"

    def ready(self):
        from marketdata.services import SPOT_MARKETS
        from trading import checks, workers

        from . import limits, links, tasks  # noqa: F401  (tasks: the periodic ones)
        from .spot import health  # noqa: F401  (the engine's readiness check)
        from .spot.services.entry import engine_channel

        checks.provide("transfer_links", links.transfer_links)  # the wallet history's links to orders
        limits.connect()  # the usage of the risk limits on orders and positions; cancel-all

        from marketdata.options import open_interest_register

        from .options.selectors import open_interest

        open_interest_register(open_interest)  # the option chain's open interest per series

        # Embedded mode: one runner thread per spot symbol (stack mode: `run_engine --symbol S`).
        for symbol in SPOT_MARKETS:

            def run(symbol=symbol):
                import time

                from marketdata.models import Instrument

                from .spot.runner import engine_singleton

                while not Instrument.objects.filter(symbol=symbol).exists():  # until the demo data is in
                    time.sleep(1.0)
                singleton = engine_singleton(symbol, announce=lambda line: None)
                workers.set_waker(engine_channel(symbol), singleton.wake)
                singleton.run()

            workers.register(f"engine:{symbol}", run)

        # ...and the market maker (stack mode: `run_marketmaker`).
        def run_marketmaker():
            import time

            from django.conf import settings

            from marketdata.models import Instrument

            from .spot.marketmaker import market_maker_user, marketmaker_singleton

            # until seed_demo has listed the markets and created the market maker's user
            while (
                market_maker_user() is None
                or not Instrument.objects.filter(symbol__in=settings.MARKET_MAKER_SYMBOLS).exists()
            ):
                time.sleep(2.0)
            marketmaker_singleton(announce=lambda line: None).run()

        workers.register("marketmaker", run_marketmaker)
