"""``manage.py lint_migrations``: refuse a migration the running release cannot live with.

Deploys are rolling (expand/contract): while a migration runs and afterwards, the previous
release's processes still read and write the tables. So a migration may only *expand* —
add tables, nullable columns or columns with a database default, indexes — and anything that
breaks the old code (dropping or renaming a column or table, a NOT NULL column without a
default, changing a column's type) waits for a later release, once no process uses it.

The check is django-migration-linter's, on the SQL ``sqlmigrate`` produces for the
configured database (``make test`` runs it on PostgreSQL): any of its errors fails the
command. Migrations written before the rule are listed in ``migrations_baseline.txt`` beside
this file and skipped; a migration may also opt out in its own code with
``django_migration_linter.IgnoreMigration()`` and a comment saying why it is safe.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

BASELINE = Path(__file__).with_name("migrations_baseline.txt")


def baseline_load(path: Path = BASELINE) -> set[tuple[str, str]]:
    """``app_label/migration_name`` per line; ``#`` starts a comment."""
    entries = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            app_label, _, name = line.partition("/")
            entries.add((app_label, name))
    return entries


def project_apps() -> list[str]:
    """The project's own apps (third-party apps' migrations are their authors' to keep)."""
    from django.apps import apps
    from django.conf import settings

    root = Path(settings.BASE_DIR).resolve()
    return [
        config.label
        for config in apps.get_app_configs()
        if Path(config.path).resolve().is_relative_to(root) and ".venv" not in Path(config.path).parts
    ]


def migrations_lint(*, apps: list[str] | None = None, baseline: set[tuple[str, str]] | None = None, verbose=False):
    """Lint every project migration not in the baseline; returns the linter (its counters:
    ``nb_erroneous``, ``nb_warnings``, ``nb_valid``, ``nb_ignored``). ``verbose``: the
    linter prints each migration's verdict and issues."""
    from django_migration_linter import MigrationLinter

    baseline = baseline_load() if baseline is None else baseline
    labels = set(apps or project_apps())
    linter = MigrationLinter(no_cache=True, no_output=not verbose, quiet=["ok"])
    for migration in sorted(linter._gather_all_migrations(), key=lambda m: (m.app_label, m.name)):
        if migration.app_label not in labels:
            continue
        if (migration.app_label, migration.name) in baseline:
            linter.nb_ignored += 1
            linter.nb_total += 1
            continue
        linter.lint_migration(migration)
    return linter


class Command(BaseCommand):
    help = "Fail on a backward-incompatible migration (drop/rename, NOT NULL without a default...)."

    def add_arguments(self, parser):
        parser.add_argument("apps", nargs="*", help="only these apps (default: every app of the project)")

    def handle(self, *args, **options):
        # the linter logs every sqlmigrate call at INFO; its verdicts are printed below
        logging.getLogger("django_migration_linter").setLevel(logging.WARNING)
        linter = migrations_lint(apps=options["apps"], verbose=options["verbosity"] >= 1)
        summary = (
            f"{linter.nb_total} migrations: {linter.nb_valid} ok, {linter.nb_warnings} with warnings, "
            f"{linter.nb_ignored} baselined or ignored, {linter.nb_erroneous} backward-incompatible"
        )
        if linter.has_errors:
            raise CommandError(
                summary + ". Split the change (expand now, contract in a later release): docs/operations.md, "
                '"Migrations".'
            )
        self.stdout.write(summary)
