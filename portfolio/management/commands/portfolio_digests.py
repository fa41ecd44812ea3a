"""Tell every trader their daily or weekly portfolio summary by hand (what the beat does at
00:10 UTC, and on Mondays for the week)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portfolio import digests
from trading.errors import DomainError


class Command(BaseCommand):
    help = (
        "Send the daily or weekly portfolio digest to every trader with holdings or activity in the period. "
        "Without --date: the last closed day, or the last whole ISO week. A trader told already is not told again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--period", choices=digests.PERIODS, required=True)
        parser.add_argument("--date", dest="day", help="a UTC day of the period, YYYY-MM-DD")

    def handle(self, *args, period: str, day: str | None = None, **options):
        try:
            run = digests.digests_send(kind=period, day=digests.period_day(day), progress=self.stdout.write)
        except DomainError as exc:
            detail = "; ".join(f"{k}: {' '.join(v) if isinstance(v, list) else v}" for k, v in exc.fields.items())
            raise CommandError(f"{exc.message} {detail}".strip()) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"==> {run.period.kind} {run.period.label}: {run.traders} traders, {run.told} told "
                f"({run.traders - run.told} already told) in {run.seconds:.1f} s"
            )
        )
