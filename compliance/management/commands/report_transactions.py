"""The regulator's daily transaction report: one CSV row per trade and trader of a UTC day."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance import reports


class Command(BaseCommand):
    help = (
        "Write the regulator's daily transaction report of a UTC day as CSV: one row per trade and trader "
        "(time, instrument, side, price, quantity, notional, fee, the trader's pseudonymous reference, venue). "
        "To --out FILE (written whole or not at all), else to standard output."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="day", required=True, help="the UTC day, YYYY-MM-DD")
        parser.add_argument("--out", help="the CSV file to write (replaced); standard output when absent")
        parser.add_argument("--progress-every", type=int, default=10_000, help="rows between progress lines")

    def handle(self, *args, day: str, out: str | None = None, progress_every: int = 10_000, **options):
        try:
            when = date.fromisoformat(day) if len(day) == 10 else None
        except ValueError:
            when = None
        if when is None:
            raise CommandError(f"--date must be a day as YYYY-MM-DD, not {day!r}.")
        if progress_every < 1:
            raise CommandError("--progress-every must be at least 1.")
        # with the CSV on standard output, what the command says goes to standard error
        say = self.stdout.write if out else self.stderr.write
        today = datetime.now(UTC).date()
        if when > today:
            raise CommandError(f"{when} has not begun yet (today is {today} UTC).")
        if when == today:
            say(self.style.WARNING(f"{when} is not over: the report holds the trades so far."))
        started = time.monotonic()

        def progress(count: int) -> None:
            say(f"... {count:,} rows ({time.monotonic() - started:.1f} s)")

        if out:
            count = self._to_file(Path(out), when, progress, progress_every)
        else:
            count = reports.regulator_report_write(day=when, out=sys.stdout, progress=progress, every=progress_every)
            sys.stdout.flush()
        where = f" to {out}" if out else ""
        say(self.style.SUCCESS(f"{count} rows for {when}{where} in {time.monotonic() - started:.1f} s"))

    @staticmethod
    def _to_file(path: Path, day: date, progress, every: int) -> int:
        """Into a file beside ``path``, renamed over it once complete: a report that failed
        half way never looks like a finished one."""
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise CommandError(f"No such folder: {folder}")
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        try:
            with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
                count = reports.regulator_report_write(day=day, out=stream, progress=progress, every=every)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return count
