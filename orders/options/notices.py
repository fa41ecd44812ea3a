"""What option trading tells traders, written in the transaction of the event: an order
filled, a position exercised or expired at expiry, and the back office's settlement of an
order or exercise done or stopped in manual review. Keys follow the outbox event keys
(``option_order:<id>``, ``option_exercise:<id>``), so a repeated run tells nothing again."""

from __future__ import annotations

from collections.abc import Iterable

from notifications.services import Message, notify, notify_many
from trading.formatting import decimal_string, display_amount
from trading.money import fmt

from .models import OptionExercise, OptionOrder, OptionSide

USDT = "USDT"


def order_filled(order: OptionOrder) -> None:
    bought = order.side == OptionSide.BUY
    contracts = decimal_string(order.contracts)
    total = fmt(USDT, order.total_usdt)
    notify(
        user=order.user,
        kind="option_filled",
        title=f"{'Bought' if bought else 'Sold'} {contracts} {order.series}",
        body=f"{'Paid' if bought else 'Received'} {display_amount(order.total_usdt, USDT)} USDT at "
        f"{display_amount(order.price_usdt, USDT)} USDT per contract.",
        dedupe_key=f"{order.outbox_key}:filled",
        data={
            "order_id": order.pk,
            "series": order.series,
            "side": order.side,
            "contracts": contracts,
            "total_usdt": total,
        },
    )


def exercise_done(exercise: OptionExercise) -> None:
    contracts = decimal_string(exercise.contracts)
    settlement = decimal_string(exercise.settlement_price)
    data = {
        "exercise_id": exercise.pk,
        "series": exercise.series,
        "outcome": exercise.outcome,
        "contracts": contracts,
        "settlement_price": settlement,
        "payout_usdt": fmt(USDT, exercise.payout_usdt),
    }
    if exercise.outcome == "exercised":
        notify(
            user=exercise.user,
            kind="option_exercised",
            title=f"{contracts} {exercise.series} exercised",
            body=f"Settled at {display_amount(exercise.settlement_price, USDT)}: "
            f"{display_amount(exercise.payout_usdt, USDT)} USDT paid to your balance.",
            dedupe_key=f"{exercise.outbox_key}:exercised",
            data=data,
        )
    else:
        notify(
            user=exercise.user,
            kind="option_expired",
            title=f"{contracts} {exercise.series} expired worthless",
            body=f"Settled at {settlement}, out of the money: nothing is paid.",
            dedupe_key=f"{exercise.outbox_key}:expired",
            data=data,
        )


_TOLD = {"settled": "settled", "manual_review": "in manual review", "resolved": "resolved by our staff"}


def settlement_states(refs: Iterable[str], state: str) -> None:
    """The back office moved these orders' or exercises' settlement to ``state``; only the
    ends (settled, manual review, resolved) are news."""
    if state not in _TOLD:
        return
    refs = list(refs)
    orders = [int(r.partition(":")[2]) for r in refs if r.startswith("option_order:") and r.partition(":")[2].isdigit()]
    exercises = [
        int(r.partition(":")[2]) for r in refs if r.startswith("option_exercise:") and r.partition(":")[2].isdigit()
    ]
    body = {
        "settled": "The hedge behind it is done; nothing more is needed from you.",
        "manual_review": (
            "It needs a look from our back office; your balance is not affected. We will tell you when it is resolved."
        ),
        "resolved": "Our back office has finished it; nothing more is needed from you.",
    }[state]
    messages = []
    for model, ids, what in ((OptionOrder, orders, "order"), (OptionExercise, exercises, "exercise")):
        if not ids:
            continue
        for pk, user_id, series in model.objects.filter(pk__in=ids).values_list("pk", "user_id", "series"):
            ref = f"option_{what}:{pk}"
            messages.append(
                Message(
                    user_id=user_id,
                    kind="option_settled",
                    title=f"Settlement of your {series} {what} {_TOLD[state]}",
                    body=body,
                    dedupe_key=f"{ref}:{state}",
                    data={"ref": ref, "series": series, "state": state},
                )
            )
    notify_many(messages)
