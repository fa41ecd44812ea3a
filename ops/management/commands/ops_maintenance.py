from django.core.management.base import BaseCommand, CommandError

from ops.services import maintenance_declare
from trading.errors import ValidationFailed


class Command(BaseCommand):
    help = "Declare a maintenance window from now: the monitor keeps probing but sends no alert until it ends."

    def add_arguments(self, parser):
        parser.add_argument("--minutes", type=float, required=True, help="how long (at most 1440)")
        parser.add_argument("--reason", required=True, help="what is being done (kept with the window)")

    def handle(self, *args, minutes, reason, **options):
        try:
            window = maintenance_declare(minutes=minutes, reason=reason)
        except ValidationFailed as exc:
            raise CommandError(f"{exc.message} {exc.fields}") from exc
        start, end = window.starts_at.isoformat(), window.ends_at.isoformat()
        self.stdout.write(f"maintenance window {window.pk}: {start} to {end} ({window.reason})")
