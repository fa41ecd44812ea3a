import time

from django.core.management.base import BaseCommand

from marketdata.backfill import backfill


class Command(BaseCommand):
    help = "Generate simulated index candle history up to now (demo mode and back-testing)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=7.0)

    def handle(self, *args, days, **options):
        started = time.monotonic()
        self.stdout.write(f"==> backfilling {days:g} days of candles")
        written = backfill(days=days, progress=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(f"==> {written} candles written in {time.monotonic() - started:.1f} s"))
