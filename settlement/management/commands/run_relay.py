import threading

from django.core.management.base import BaseCommand

from settlement.relay import listen_for_commits, relay_singleton


class Command(BaseCommand):
    help = "Run the outbox relay (active-standby behind the 'relay' lease): outbox -> settlement intake."

    def add_arguments(self, parser):
        parser.add_argument("--ttl", type=float, default=3.0, help="lease time-to-live in seconds")

    def handle(self, *args, ttl, **options):
        singleton = relay_singleton(ttl=ttl, announce=lambda line: self.stdout.write(line))
        stop = threading.Event()
        listener = threading.Thread(
            target=listen_for_commits, args=(singleton.wake, stop), name="relay-listen", daemon=True
        )
        listener.start()
        try:
            singleton.run()
        finally:
            stop.set()
