"""The monitor's rule for one check (plain Python, no Django): a check turns *failing* after
``fail_after`` consecutive failed probes and back to *ok* after ``recover_after``
consecutive good ones, so one slow answer neither raises nor clears an alert.

``observe(state, ok, now, rule)`` returns the next state and the transition it made
(``FAILED``, ``RECOVERED`` or ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

OK = "ok"
FAILING = "failing"
FAILED = "failed"
RECOVERED = "recovered"


@dataclass(frozen=True)
class Rule:
    fail_after: int = 2
    recover_after: int = 2

    def __post_init__(self):
        if self.fail_after < 1 or self.recover_after < 1:
            raise ValueError("a rule needs at least one probe to change state")


@dataclass(frozen=True)
class CheckStatus:
    status: str = OK
    since: datetime | None = None
    failures: int = 0  # consecutive failed probes
    successes: int = 0  # consecutive good probes


def observe(state: CheckStatus, ok: bool, now: datetime, rule: Rule) -> tuple[CheckStatus, str | None]:
    """One probe's outcome applied to ``state``."""
    since = state.since or now
    if ok:
        successes, failures = state.successes + 1, 0
        if state.status == FAILING and successes >= rule.recover_after:
            return CheckStatus(OK, now, 0, successes), RECOVERED
        return replace(state, since=since, failures=failures, successes=successes), None
    failures, successes = state.failures + 1, 0
    if state.status == OK and failures >= rule.fail_after:
        return CheckStatus(FAILING, now, failures, 0), FAILED
    return replace(state, since=since, failures=failures, successes=successes), None
