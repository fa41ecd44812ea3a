from django.conf import settings
from django.core.management.base import BaseCommand

from ops.monitor import monitor_singleton


class Command(BaseCommand):
    help = (
        "Run the ops monitor (active-standby behind the 'monitor' lease): every MONITOR_INTERVAL_SECONDS it "
        "probes the platform, records incidents and alerts staff."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--ttl", type=float, default=None, help="lease time-to-live in seconds (MONITOR_LEASE_TTL_SECONDS)"
        )

    def handle(self, *args, ttl, **options):
        self.stdout.write(
            f"monitor: every {settings.MONITOR_INTERVAL_SECONDS:g}s, probe timeout "
            f"{settings.MONITOR_PROBE_TIMEOUT_SECONDS:g}s, failing after {settings.MONITOR_FAIL_AFTER} probes"
        )
        monitor_singleton(ttl=ttl, announce=lambda line: self.stdout.write(line)).run()
