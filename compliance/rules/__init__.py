"""The AML rules' pure core (no Django): records in, hits out. See docs/compliance.md."""

from .core import (
    DEPOSIT,
    INSUFFICIENT_HISTORY,
    KINDS,
    MOVEMENTS,
    SIGN_IN,
    TRADE,
    WITHDRAWAL,
    Band,
    Context,
    Hit,
    Measure,
    Raised,
    Record,
    Rule,
    Totals,
    evaluate,
    score,
    suppress,
    total_score,
)
from .defaults import DEFAULT_RULES
from .measures import MEASURES

__all__ = [
    "DEFAULT_RULES",
    "DEPOSIT",
    "INSUFFICIENT_HISTORY",
    "KINDS",
    "MEASURES",
    "MOVEMENTS",
    "SIGN_IN",
    "TRADE",
    "WITHDRAWAL",
    "Band",
    "Context",
    "Hit",
    "Measure",
    "Raised",
    "Record",
    "Rule",
    "Totals",
    "evaluate",
    "score",
    "suppress",
    "total_score",
]
