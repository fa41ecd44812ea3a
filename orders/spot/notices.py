"""What a spot batch tells traders: the notifications of the orders one engine commit
touched, written in that commit (``notifications.services.notify_many``).

Keys follow the order: a fill, a cancel or a trigger is told once however often the batch
is replayed (a runner that lost its lease and the next leader write the same keys). Partial
fills are coalesced by the notifications app: one message per order per window, saying the
latest filled quantity. The platform's own accounts (the market maker) are not told.
"""

from __future__ import annotations

from django.conf import settings

from accounts.models import User
from notifications.services import Message
from trading.formatting import display_amount
from trading.money import fmt

from .models import SpotStatus

_silent: set[int] | None = None


def silent_users() -> set[int]:
    """The system users that trade through the engine and need no messages."""
    global _silent
    if _silent is None:
        emails = set(settings.RISK_EXEMPT_EMAILS) | {settings.MARKET_MAKER_EMAIL}
        _silent = set(User.objects.filter(email__in=emails).values_list("pk", flat=True))
    return _silent


def order_messages(symbol: str, base: str, quote: str, orders, triggered: set[int]) -> list[Message]:
    """The messages of the touched ``orders`` of one batch (before their batch amounts reset)."""
    silent = silent_users()
    messages = []
    for order in orders:
        if order.user_id in silent or order.invalid:
            continue
        side = "Buy" if order.side == "buy" else "Sell"
        what = f"{side} {symbol} order {order.id}"
        filled = fmt(base, order.filled)
        # what people read is written for people (24,609.16 USDT); the data keeps the API's strings
        shown, shown_quote = display_amount(order.filled, base), display_amount(order.filled_quote, quote)
        data = {
            "order_id": order.id,
            "symbol": symbol,
            "side": order.side,
            "type": order.type,
            "status": order.status,
            "filled_quantity": filled,
            "filled_quote": fmt(quote, order.filled_quote),
        }
        traded = bool(order.spent or order.received)
        if order.id in triggered:
            messages.append(
                Message(
                    user_id=order.user_id,
                    kind="order_triggered",
                    title=f"{what} triggered",
                    body="Its stop price was reached; it is now working in the book.",
                    dedupe_key=f"spot:{order.id}:triggered",
                    data=data,
                )
            )
        if order.status == SpotStatus.FILLED:
            messages.append(
                Message(
                    user_id=order.user_id,
                    kind="order_filled",
                    title=f"{what} filled",
                    body=f"Filled {shown} {base} for {shown_quote} {quote}.",
                    dedupe_key=f"spot:{order.id}:filled",
                    data=data,
                )
            )
        elif order.status == SpotStatus.CANCELLED:
            reason = order.reason or "cancelled"
            done = f" {shown} {base} of it had filled." if order.filled else " Nothing of it had filled."
            messages.append(
                Message(
                    user_id=order.user_id,
                    kind="order_cancelled",
                    title=f"{what} cancelled",
                    body=f"Reason: {str(reason).replace('_', ' ')}.{done} The rest of its hold is released.",
                    dedupe_key=f"spot:{order.id}:cancelled",
                    data={**data, "reason": str(reason)},
                )
            )
        elif order.status == SpotStatus.PARTIALLY_FILLED and traded:
            quantity = display_amount(order.quantity, base) if order.quantity is not None else ""
            of = f" of {quantity}" if quantity else ""
            messages.append(
                Message(
                    user_id=order.user_id,
                    kind="order_partially_filled",
                    title=f"{what} partially filled",
                    body=f"Filled {shown}{of} {base} so far for {shown_quote} {quote}.",
                    dedupe_key=f"spot:{order.id}:partial",
                    data=data,
                )
            )
    return messages


_AMEND_REFUSALS = {
    "insufficient_funds": "your available balance does not cover the change",
    "post_only_would_take": "at the new price the post-only order would have traded at once",
    "order_not_open": "the order was no longer open",
    "unknown_order": "the order was no longer open",
    "amend_no_change": "the new price and quantity are the order's own",
    "amend_below_filled": "the new quantity is not above what has already filled",
    "amend_not_allowed": "this order cannot be changed that way",
}


def amend_messages(symbol: str, base: str, quote: str, verdicts: list[dict], sides: dict[int, str]) -> list[Message]:
    """The messages of one batch's amend verdicts (``_amends_record``'s dicts): an applied
    change says the order's new price and quantity and whether it kept its place in the
    queue; a refused one says why and that the order is unchanged. Keyed by the amend, so
    a replayed batch tells each once."""
    silent = silent_users()
    messages = []
    for verdict in verdicts:
        if verdict["user_id"] in silent:
            continue
        order_id = verdict["order_id"]
        side = {"buy": "Buy ", "sell": "Sell "}.get(sides.get(order_id, ""), "")
        what = f"{side}{symbol} order {order_id}"
        data = {key: verdict[key] for key in ("order_id", "symbol", "status", "reason", "price", "quantity")}
        data["amend_id"] = verdict["id"]
        data["priority_kept"] = verdict["priority_kept"]
        if verdict["status"] == "applied":
            changes = []
            if verdict["price"] is not None:
                changes.append(f"price {display_amount(verdict['price'], quote)} {quote}")
            if verdict["quantity"] is not None:
                changes.append(f"quantity {display_amount(verdict['quantity'], base)} {base}")
            place = (
                "It kept its place in the queue."
                if verdict["priority_kept"]
                else "It moved to the back of the queue at its price."
            )
            title, body = f"{what} changed", f"Now {' and '.join(changes) or 'as asked'}. {place}"
        else:
            reason = verdict["reason"] or ""
            why = _AMEND_REFUSALS.get(reason, reason.replace("_", " ") or "refused by the engine")
            title, body = f"Change to {what} refused", f"Reason: {why}. The order is unchanged."
        messages.append(
            Message(
                user_id=verdict["user_id"],
                kind="order_amended",
                title=title,
                body=body,
                dedupe_key=f"spot:{order_id}:amend:{verdict['id']}",
                data=data,
            )
        )
    return messages
