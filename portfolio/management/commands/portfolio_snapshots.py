"""Write the daily portfolio snapshots by hand: the nightly run, one day, or a backfill."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from portfolio import snapshots
from trading.errors import DomainError


class Command(BaseCommand):
    help = (
        "Write every trader's daily portfolio snapshot. Without options: the closed days not written yet "
        "(as the 00:00 UTC task does). Existing rows are never changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="day", help="one closed UTC day, YYYY-MM-DD")
        parser.add_argument(
            "--backfill", action="store_true", help="every day from the ledger's first transfer to yesterday"
        )

    def handle(self, *args, day: str | None = None, backfill: bool = False, **options):
        if day and backfill:
            raise CommandError("Give --date or --backfill, not both.")
        if day:
            try:
                days = [_day(day)]
            except ValueError:
                raise CommandError(f"--date must be a day as YYYY-MM-DD, not {day!r}.") from None
        else:
            days = snapshots.days_due(backfill=backfill)
        if not days:
            self.stdout.write("Nothing to do: every closed day has its snapshots.")
            return
        self.stdout.write(f"==> snapshots of {len(days)} days, from {days[0]} to {days[-1]}")
        try:
            run = snapshots.snapshots_write(days=days, progress=self.stdout.write)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for day, assets in sorted(run.skipped.items()):
            self.stdout.write(self.style.WARNING(f"{day}: not written, no price for {', '.join(assets)}"))
        self.stdout.write(
            self.style.SUCCESS(f"==> {run.written} snapshots written for {len(run.days)} days in {run.seconds:.1f} s")
        )


def _day(text: str) -> date:
    return date.fromisoformat(text) if len(text) == 10 else date.fromisoformat("invalid")
