from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orders.spot.marketmaker import market_maker_user, marketmaker_singleton


class Command(BaseCommand):
    help = "Run the market maker (active-standby behind the 'marketmaker' lease): quotes around the index."

    def add_arguments(self, parser):
        parser.add_argument("--ttl", type=float, default=3.0, help="lease time-to-live in seconds")
        parser.add_argument(
            "--symbol",
            action="append",
            dest="symbols",
            default=None,
            help="quote only this symbol (repeatable; default MARKET_MAKER_SYMBOLS)",
        )

    def handle(self, *args, ttl, symbols, **options):
        if market_maker_user() is None:
            raise CommandError(f"No market maker user {settings.MARKET_MAKER_EMAIL}; run `manage.py seed_demo` first.")
        symbols = [s.upper() for s in symbols] if symbols else None
        marketmaker_singleton(ttl=ttl, symbols=symbols, announce=lambda line: self.stdout.write(line)).run()
