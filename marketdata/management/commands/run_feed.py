from django.core.management.base import BaseCommand

from marketdata.feed_runner import feed_singleton


class Command(BaseCommand):
    help = "Run the index feed (active-standby behind the 'feed' lease): sources -> index prints -> candles."

    def add_arguments(self, parser):
        parser.add_argument("--ttl", type=float, default=3.0, help="lease time-to-live in seconds")

    def handle(self, *args, ttl, **options):
        feed_singleton(ttl=ttl, announce=lambda line: self.stdout.write(line)).run()
