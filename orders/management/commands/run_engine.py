import threading

from django.core.management.base import BaseCommand, CommandError

from marketdata.models import Instrument, InstrumentKind
from orders.spot.runner import engine_singleton
from orders.spot.services.entry import engine_channel
from trading.notify import listen


class Command(BaseCommand):
    help = "Run the matching engine of one spot symbol (active-standby behind the 'engine:<SYMBOL>' lease)."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", required=True, help="e.g. BTC-USDT")
        parser.add_argument("--ttl", type=float, default=3.0, help="lease time-to-live in seconds")
        parser.add_argument("--batch", type=int, default=None, help="orders per batch (default ENGINE_BATCH_SIZE)")

    def handle(self, *args, symbol, ttl, batch, **options):
        symbol = symbol.upper()
        if not Instrument.objects.filter(symbol=symbol, kind=InstrumentKind.SPOT).exists():
            raise CommandError(f"No spot instrument {symbol}; run `manage.py seed_demo` (or sync instruments) first.")
        singleton = engine_singleton(
            symbol, ttl=ttl, batch=batch, guard_gc=True, announce=lambda line: self.stdout.write(line)
        )
        stop = threading.Event()
        listener = threading.Thread(
            target=listen,
            args=(engine_channel(symbol), singleton.wake, stop),
            name=f"engine-listen-{symbol}",
            daemon=True,
        )
        listener.start()
        try:
            singleton.run()
        finally:
            stop.set()
