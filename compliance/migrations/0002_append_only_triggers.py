"""The database refuses to change or remove audit records, whatever the client.

PostgreSQL: BEFORE UPDATE and BEFORE DELETE row triggers raise. TRUNCATE is not blocked (the
test suite's flush between transactional tests uses it); in production the application's
database role should not own the table, so it cannot TRUNCATE, ALTER or DISABLE TRIGGER.

SQLite (embedded mode): only the UPDATE trigger. SQLite has no session setting a trigger
could consult, and ``flush`` (tests, ``manage.py flush``) empties tables with DELETE, so a
DELETE trigger would make the embedded database impossible to reset; the model and its
queryset still refuse deletes.

SQLite drops a table's triggers when Django rebuilds the table for an ALTER: a later
migration that alters ``compliance_auditrecord`` (the kernel's ``trading.AuditRecord`` since
trading/migrations/0003) must run ``SQLITE_CREATE`` again.
"""

from django.db import migrations

TABLE = "compliance_auditrecord"

POSTGRES_CREATE = f"""
CREATE OR REPLACE FUNCTION compliance_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only: % on %.% refused', TG_OP, TG_TABLE_NAME, OLD.seq
        USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER compliance_auditrecord_no_update BEFORE UPDATE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION compliance_audit_append_only();
CREATE TRIGGER compliance_auditrecord_no_delete BEFORE DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION compliance_audit_append_only();
"""

POSTGRES_DROP = f"""
DROP TRIGGER IF EXISTS compliance_auditrecord_no_update ON {TABLE};
DROP TRIGGER IF EXISTS compliance_auditrecord_no_delete ON {TABLE};
DROP FUNCTION IF EXISTS compliance_audit_append_only();
"""

SQLITE_CREATE = f"""
CREATE TRIGGER IF NOT EXISTS compliance_auditrecord_no_update BEFORE UPDATE ON {TABLE}
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused');
END;
"""

SQLITE_DROP = "DROP TRIGGER IF EXISTS compliance_auditrecord_no_update;"


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE, params=None)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
