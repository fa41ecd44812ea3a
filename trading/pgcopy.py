"""PostgreSQL's fastest bulk path for large batches of rows (an engine batch, a settlement step).

``copy_rows`` streams rows into a table with ``COPY ... FROM STDIN (FORMAT BINARY)``:
psycopg encodes each row in C, PostgreSQL decodes it without parsing text, and constraint
violations (a duplicate key, a failed check) raise as an ``INSERT`` would, so callers keep
their ``IntegrityError`` handling. It runs in the caller's transaction and needs
PostgreSQL; callers keep their own path for SQLite (``connection.vendor``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection

# Column types as psycopg names them for its binary dumpers.
_PG_TYPES = {
    "text": "text",
    "numeric": "numeric",
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "boolean": "bool",
    "timestamptz": "timestamptz",
    "jsonb": "jsonb",
}


def copy_rows(table: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence]) -> None:
    """``COPY table (columns) FROM STDIN`` in binary; ``columns`` are ``(name, sql type)``
    and every row gives the values in that order (None is NULL)."""
    names = ", ".join(name for name, _ in columns)
    types = [_PG_TYPES[kind] for _, kind in columns]
    # the raw psycopg cursor's errors go through Django's wrapper: IntegrityError as for an INSERT
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(types)
        write = copy.write_row
        for row in rows:
            write(row)
