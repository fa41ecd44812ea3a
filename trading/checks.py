"""Checks a higher app adds to a lower app's operation, registered at start-up.

A lower app cannot import a higher one, so where an operation of a lower app must pass a
higher app's rules (a withdrawal, in ``ledger``, must pass ``risk``'s daily limit), the lower
app runs the checks registered under the operation's name, and the higher app registers
them from its ``AppConfig.ready()``. A check raises a ``DomainError`` to refuse.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

_checks: dict[str, list[Callable[..., None]]] = defaultdict(list)


def register(operation: str, check: Callable[..., None]) -> None:
    if check not in _checks[operation]:
        _checks[operation].append(check)


def registered(operation: str) -> list[Callable[..., None]]:
    return list(_checks[operation])


def collect(operation: str, **facts) -> list:
    """What the checks registered for ``operation`` answer, where they answer something (a
    reason to hold a withdrawal for review, say); none of them refuses by answering."""
    return [answer for check in _checks[operation] if (answer := check(**facts)) is not None]


def run(operation: str, **facts) -> None:
    """Run every check registered for ``operation``; the first refusal is raised."""
    for check in _checks[operation]:
        check(**facts)


# Figures a higher app owns and a lower app shows (the wallet page shows the daily
# withdrawal limits that risk decides): the higher app provides a function by name.
_figures: dict[str, Callable[..., object]] = {}


def provide(name: str, read: Callable[..., object]) -> None:
    _figures[name] = read


def figure(name: str, default=None, **facts):
    read = _figures.get(name)
    return default if read is None else read(**facts)
