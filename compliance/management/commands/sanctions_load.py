"""Load a sanctions list in the FollowTheMoney format (OpenSanctions' entities, one JSON object
per line), replacing the one in force:

    python manage.py sanctions_load compliance/sanctions/data/sample.ftm.json
    python manage.py sanctions_load --sample        # the small list shipped for the demo and tests
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.sanctions.services import sanctions_load

SAMPLE = Path(__file__).resolve().parents[2] / "sanctions" / "data" / "sample.ftm.json"


class Command(BaseCommand):
    help = "Load a sanctions list (FollowTheMoney JSON lines), replacing the current one."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="the list: FollowTheMoney entities, one JSON object per line")
        parser.add_argument("--sample", action="store_true", help="load the sample list shipped with the platform")

    def handle(self, *args, file=None, sample=False, **options):
        if bool(file) == bool(sample):
            raise CommandError("Give the list's file, or --sample for the shipped sample list.")
        path = SAMPLE if sample else Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {path}")

        def progress(done: int) -> None:
            self.stdout.write(f"  {done:,} entities read")

        try:
            with path.open(encoding="utf-8") as lines:
                load = sanctions_load(lines=lines, source=str(path), progress=progress)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path} is not a FollowTheMoney list: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {load.entities:,} entities and {load.addresses:,} wallet addresses from {path} "
                f"(sha256 {load.sha256[:12]}…); screening uses this list from now on."
            )
        )
