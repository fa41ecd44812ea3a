"""Array literals for PostgreSQL's ``unnest`` bulk statements.

A batch of thousands of rows goes to PostgreSQL as one statement whose parameters are
arrays, one per column (``INSERT ... SELECT * FROM unnest(%s::numeric[], ...)``). Handing
psycopg Python lists makes it adapt every element in Python, which cost more than the
statement itself; one array literal per column, built with ``str`` and ``join``, costs a
fraction of that.
"""

from __future__ import annotations

from collections.abc import Iterable

_NUMERIC = frozenset({"numeric", "bigint", "integer", "smallint"})


def _quoted(value) -> str:
    if value is None:
        return "NULL"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Iterable, kind: str) -> str:
    """``values`` as the text of a PostgreSQL array of ``kind`` (None is NULL)."""
    if kind in _NUMERIC:
        return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
    if kind == "boolean":
        return "{" + ",".join("NULL" if v is None else ("t" if v else "f") for v in values) + "}"
    return "{" + ",".join(_quoted(v) for v in values) + "}"


def unnest_arrays(columns: list[list], kinds: Iterable[str]) -> tuple[str, list[str]]:
    """``("%s::numeric[], %s::text[], ...", [literal, literal, ...])`` for ``unnest(...)``."""
    kinds = list(kinds)
    placeholders = ", ".join(f"%s::{kind}[]" for kind in kinds)
    return placeholders, [array_literal(column, kind) for column, kind in zip(columns, kinds)]
