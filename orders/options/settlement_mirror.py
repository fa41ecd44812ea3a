"""The one place the back office writes into the orders app: the settlement state shown
on each option order and exercise. Keyed by the outbox event keys the counter wrote."""

from __future__ import annotations

from collections.abc import Iterable

from . import notices
from .models import OptionExercise, OptionOrder

_MODELS = {"option_order": OptionOrder, "option_exercise": OptionExercise}


def set_state(*, refs: Iterable[str], state: str) -> None:
    """Runs in the caller's transaction (the traders are told in it too)."""
    refs = list(refs)
    ids: dict[str, list[int]] = {}
    for ref in refs:
        kind, _, pk = ref.partition(":")
        if kind in _MODELS and pk.isdigit():
            ids.setdefault(kind, []).append(int(pk))
    for kind, pks in ids.items():
        _MODELS[kind].objects.filter(pk__in=pks).update(settlement_state=state)
    notices.settlement_states(refs, state)
