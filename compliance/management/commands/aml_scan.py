"""Every live AML rule over the activity since --since (default: the last 24 hours), as if
each deposit, withdrawal, trade and sign-in had been evaluated when it happened. Prints the
alerts raised and the cases opened; an alert raised before (in real time or by an earlier
scan) is not raised again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from compliance.services import aml_scan


def parse_since(value: str | None):
    if not value:
        return timezone.now() - timedelta(days=1)
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since {value!r}: give a date (YYYY-MM-DD) or an ISO 8601 time.")
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


class Command(BaseCommand):
    help = "Run every live AML rule over history since --since and print the alerts raised."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="YYYY-MM-DD or an ISO 8601 time (default: 24 hours ago)")
        parser.add_argument("--chunk", type=int, default=500, help="traders loaded at a time")

    def handle(self, *args, since=None, chunk=500, **options):
        start = parse_since(since)
        self.stdout.write(f"AML scan of the activity since {start:%Y-%m-%d %H:%M:%S} UTC")

        def progress(done, total):
            self.stdout.write(f"  {done:,} / {total:,} traders")

        outcome = aml_scan(since=start, chunk=max(1, chunk), progress=progress)
        for alert in outcome.alerts:
            self.stdout.write(
                f"  alert {alert.pk}: user {alert.user_id} {alert.rule_code} v{alert.rule_version} {alert.band} "
                f"score {alert.score} at {alert.at:%Y-%m-%d %H:%M:%S} ({', '.join(alert.transactions)})"
            )
        for case in outcome.cases_opened:
            self.stdout.write(f"  case {case.pk} opened: user {case.user_id}, score {case.score}")
        self.stdout.write(
            f"{outcome.users:,} traders, {outcome.triggers:,} events, {len(outcome.alerts)} alerts, "
            f"{len(outcome.cases_opened)} cases opened, {len(outcome.cases_updated)} updated "
            f"in {outcome.seconds:.2f} s"
        )
        for key, count in sorted(outcome.by_rule().items()):
            self.stdout.write(f"  {key}: {count}")
