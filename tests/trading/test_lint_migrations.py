"""``manage.py lint_migrations`` (run by ``make test``) refuses a backward-incompatible
migration and lets an expanding one through: checked on crafted migrations given to an app
through ``MIGRATION_MODULES``, with the SQL PostgreSQL would run."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest
from django.core.management import CommandError, call_command

from trading.management.commands.lint_migrations import baseline_load, migrations_lint

pytestmark = pytest.mark.django_db

INITIAL = """
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Probe",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=40)),
                ("note", models.CharField(max_length=40, null=True)),
            ],
        ),
    ]
"""


def _step(previous: str, operation: str) -> str:
    return textwrap.dedent(
        f"""
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("ops", "{previous}")]
            operations = [{operation}]
        """
    )


@pytest.fixture
def crafted(settings, tmp_path):
    """The ``ops`` app's migrations replaced by a crafted history; yields a function that
    appends one migration made of ``operation``."""
    package = f"crafted_migrations_{uuid.uuid4().hex[:8]}"
    root = tmp_path / package
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "0001_initial.py").write_text(INITIAL)
    sys.path.insert(0, str(tmp_path))
    settings.MIGRATION_MODULES = {"ops": package}
    names = ["0001_initial"]

    def add(name: str, operation: str) -> str:
        (root / f"{name}.py").write_text(_step(names[-1], operation))
        names.append(name)
        return name

    yield add
    sys.path.remove(str(tmp_path))
    for module in [m for m in sys.modules if m.startswith(package)]:
        del sys.modules[module]


def _verdicts(**kwargs) -> tuple[int, int]:
    linter = migrations_lint(apps=["ops"], **kwargs)
    return linter.nb_valid, linter.nb_erroneous


def test_dropping_renaming_or_adding_a_not_null_column_without_a_default_is_refused(crafted):
    crafted("0002_drop_note", 'migrations.RemoveField(model_name="probe", name="note")')
    assert _verdicts(baseline=set()) == (1, 1)
    crafted("0003_rename_name", 'migrations.RenameField(model_name="probe", old_name="name", new_name="label")')
    crafted(
        "0004_not_null_size",
        'migrations.AddField(model_name="probe", name="size", field=models.IntegerField(default=0),'
        " preserve_default=False)",
    )
    assert _verdicts(baseline=set()) == (1, 3)
    with pytest.raises(CommandError, match="3 backward-incompatible"):
        call_command("lint_migrations", "ops", verbosity=0)


def test_expanding_migrations_pass_and_the_baseline_skips_the_old_ones(crafted):
    crafted(
        "0002_nullable_colour",
        'migrations.AddField(model_name="probe", name="colour", field=models.CharField(max_length=8, null=True))',
    )
    crafted(
        "0003_size_with_db_default",
        'migrations.AddField(model_name="probe", name="size", field=models.IntegerField(db_default=0))',
    )
    crafted(
        "0004_table", 'migrations.CreateModel(name="Other", fields=[("id", models.BigAutoField(primary_key=True))])'
    )
    assert _verdicts(baseline=set()) == (4, 0)
    call_command("lint_migrations", "ops", verbosity=0)  # no error

    crafted("0005_drop_colour", 'migrations.RemoveField(model_name="probe", name="colour")')
    assert _verdicts(baseline=set()) == (4, 1)
    assert _verdicts(baseline={("ops", "0005_drop_colour")}) == (4, 0)


def test_the_baseline_names_migrations_that_exist():
    from django.db.migrations.loader import MigrationLoader

    on_disk = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    baseline = baseline_load()
    assert baseline and baseline <= on_disk, baseline - on_disk
