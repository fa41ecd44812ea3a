from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ops.services import daily_aggregates_compute
from trading.formatting import decimal_string


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"{text!r} is not a day: write YYYY-MM-DD.") from exc


class Command(BaseCommand):
    help = (
        "Recompute the analytics' daily aggregates (per spot symbol and UTC day) from the trades and orders: "
        "one day, every day since a date, or by default yesterday and today. Safe to run again."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--day", help="YYYY-MM-DD: this day only")
        which.add_argument("--since", help="YYYY-MM-DD: every day from this one to today")

    def handle(self, *args, day=None, since=None, **options):
        today = timezone.now().date()
        if day is not None:
            first = last = _day(day)
        elif since is not None:
            first, last = _day(since), today
        else:
            first, last = today - timedelta(days=1), today
        if first > today:
            raise CommandError(f"{first} is in the future (today is {today} UTC).")
        total = (last - first).days + 1
        done = {"n": 0}

        def progress(day, rows):
            done["n"] += 1
            traded = ", ".join(
                f"{row.symbol} {row.trades} trades {decimal_string(row.volume_quote)} USDT" for row in rows
            )
            self.stdout.write(f"[{done['n']}/{total}] {day}: {traded or 'no symbols'}")

        days = daily_aggregates_compute(first=first, last=last, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"{days} day(s) aggregated, {first} to {last}."))
