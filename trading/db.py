"""Several small reads in one database round trip.

Order entry locks the trader's row and then reads what its checks need (the trading state
under its lock, the trader's live orders, a holding). Each read is tiny; sent one by one,
the round trips cost more than the reads. ``read_together`` sends them as one text, which
PostgreSQL runs statement by statement in the caller's transaction: under READ COMMITTED
each statement takes its own snapshot, so a read placed after a lock sees what was committed
before the lock was granted.

One text of several statements cannot carry bound parameters, so each ``Read`` writes its
values into its SQL itself, and only values that cannot carry SQL: integers, and names
checked against a strict pattern by ``sql_name``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection

_NAME = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def sql_name(value: str) -> str:
    """``value`` as an SQL string literal, if it is a plain name (a symbol, an asset, a
    client id); anything else is refused, not escaped."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"not a plain name: {value!r}")
    return f"'{value}'"


def sql_int(value) -> str:
    return str(int(value))


@dataclass(frozen=True)
class Read:
    """Statements (values written in) and what to make of the last one's rows."""

    statements: tuple[str, ...]
    parse: Callable[[list[tuple]], Any] = list

    @classmethod
    def one(cls, sql: str, parse: Callable[[list[tuple]], Any] = list) -> Read:
        return cls((sql,), parse)


def read_together(*reads: Read) -> list:
    """Run ``reads`` in order in one round trip (PostgreSQL; one by one elsewhere) and return
    each one's parsed result."""
    results = []
    with connection.cursor() as cursor:
        together = connection.vendor == "postgresql"
        if together:
            cursor.execute("; ".join(statement for read in reads for statement in read.statements))
        first = True
        for read in reads:
            rows: list[tuple] = []
            for statement in read.statements:
                if not together:
                    cursor.execute(statement)
                elif not first:
                    cursor.nextset()
                first = False
                rows = cursor.fetchall() if cursor.description is not None else []
            results.append(read.parse(rows))
    return results
