"""The audit trail's models now belong to the kernel (trading/migrations/0003), on the same
tables: here they leave compliance's state without touching the database, and compliance
keeps a proxy for its admin (same address, same permissions)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_append_only_triggers"),
        ("trading", "0003_audit_trail"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="AuditRecord"),
                migrations.DeleteModel(name="AuditChainHead"),
            ],
        ),
        migrations.CreateModel(
            name="AuditRecord",
            fields=[],
            options={"verbose_name": "audit record", "proxy": True, "indexes": [], "constraints": []},
            bases=("trading.auditrecord",),
        ),
    ]
