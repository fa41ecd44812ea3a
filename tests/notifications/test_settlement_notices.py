"""An option order's settlement told through the real back office: the order's own outbox
event taken in by settlement intake and run through its four steps; the trader hears once
when it is settled, once when a venue refusal stops it in manual review, and nothing more
when the steps or the intake run again."""

from __future__ import annotations

import pytest

from notifications.models import Notification
from settlement import services
from settlement.models import Settlement, State
from tests.notifications.test_option_notices import buy
from tests.orders.conftest import listed, pick_series, trader  # noqa: F401  (listed: a fixture)
from tests.settlement.conftest import (  # noqa: F401  (fixtures)
    _venue_calls_inline,
    index_prints,
    set_faults,
    venue,
    venue_settings,
)
from trading.models import OutboxEvent
from trading.outbox import outbox_message

pytestmark = pytest.mark.django_db


def run_all_steps(ids):
    for step in (1, 2, 3, 4):
        ids = services.settlements_run(ids=ids, from_step=step, to_step=step, through_venue=True)
    return ids


def intake(order) -> int:
    message = outbox_message(OutboxEvent.objects.get(key=order.outbox_key))
    (sid,) = services.settlements_accept(events=[message])
    assert services.settlements_accept(events=[message]) == []  # the relay delivered it again
    return sid


def told(user):
    return list(Notification.objects.filter(user=user, kind="option_settled").order_by("id"))


def test_settled_and_manual_review_are_told_once_each(listed, venue_settings, venue):  # noqa: F811
    call = pick_series("BTC", "C")
    alice, bob = trader(), trader()
    settled, stopped = buy(alice, call), buy(bob, call)

    sid = intake(settled)
    assert run_all_steps([sid]) == [sid]
    assert Settlement.objects.get(pk=sid).state == State.SETTLED
    run_all_steps([sid])  # run again: nothing new
    (done,) = told(alice)
    assert done.data == {"ref": settled.outbox_key, "series": call.symbol, "state": "settled"}
    assert done.title == f"Settlement of your {call.symbol} order settled"

    set_faults(venue_settings, "reject=1.0")
    sid = intake(stopped)
    run_all_steps([sid])
    assert Settlement.objects.get(pk=sid).state == State.MANUAL_REVIEW
    run_all_steps([sid])
    (review,) = told(bob)
    assert review.data["state"] == "manual_review"
    assert review.title == f"Settlement of your {call.symbol} order in manual review"
    assert told(alice) == [done]
