"""The audit trail joins the kernel: its two tables stay exactly as compliance created them
(``compliance_auditrecord`` with the append-only triggers of compliance/migrations/0002, and
``compliance_auditchainhead``), and only Django's idea of which app owns them changes.
Nothing is created, copied or dropped (compliance/migrations/0003 removes them from
compliance's state).

On a fresh database compliance's 0001 and 0002 still create the tables and triggers, so this
migration runs after them: every later change to these models (a migration of the kernel)
finds the tables in place.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0002_outbox_event"),
        ("compliance", "0002_append_only_triggers"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="AuditChainHead",
                    fields=[
                        ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                        ("seq", models.BigIntegerField(default=0)),
                        ("hash", models.CharField(default="0" * 64, max_length=64)),
                    ],
                    options={
                        "verbose_name": "audit chain head",
                        "db_table": "compliance_auditchainhead",
                    },
                ),
                migrations.CreateModel(
                    name="AuditRecord",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("seq", models.BigIntegerField(unique=True)),
                        ("at", models.DateTimeField()),
                        ("actor_label", models.CharField(max_length=254)),
                        ("action", models.CharField(db_index=True, max_length=64)),
                        ("target_type", models.CharField(blank=True, max_length=100)),
                        ("target_id", models.CharField(blank=True, db_index=True, max_length=255)),
                        ("data", models.JSONField(blank=True, default=dict)),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("prev_hash", models.CharField(max_length=64)),
                        ("hash", models.CharField(max_length=64, unique=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "audit record",
                        "ordering": ["-seq"],
                        "db_table": "compliance_auditrecord",
                    },
                ),
            ],
        ),
    ]
