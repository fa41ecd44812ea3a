"""What a spot batch tells traders: the notifications of the orders one engine commit
touched, written in that commit (``notifications.services.notify_many``).

Keys follow the order: a fill, a cancel, a refusal or a trigger is told once however often
the batch is replayed (a runner that lost its lease and the next leader write the same keys).
Partial fills are coalesced by the notifications app: one message per order per window,
saying the latest filled quantity. The platform's own accounts (the market maker) are not
told. An accepted RFQ quote, a block trade, is told as a fill (``block_trade_told``).

A smart order (``route="smart"``) is told as one order: its part on our book is not (the
trader never placed that child), and the parent's fill or cancel is told once it closes
(``smart_order_message``, written where routing closes it), with what every child filled.
"""

from __future__ import annotations

from django.conf import settings

from accounts.models import User
from notifications.services import Message, notify_many
from trading.formatting import display_amount
from trading.money import fmt

from .models import SpotStatus

_silent: set[int] | None = None

# Why the engine refused an order it had accepted for matching, as the trader reads it.
REFUSALS = {
    "post_only_would_take": "at that price the post-only order would have traded at once",
    "fok_unfillable": "the book could not fill the fill-or-kill order entirely",
    "stop_would_trigger": "the last trade had already reached its stop price",
    "no_reference_price": "there was no trade yet for the trailing stop to follow",
}


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
        if order.user_id in silent or order.invalid or order.child:
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
        elif order.status == SpotStatus.REJECTED:
            reason = str(order.reason or "rejected")
            why = REFUSALS.get(reason, reason.replace("_", " "))
            messages.append(
                Message(
                    user_id=order.user_id,
                    kind="order_rejected",
                    title=f"{what} rejected",
                    body=f"Refused by the engine: {why}. Nothing of it traded; its hold is released.",
                    dedupe_key=f"spot:{order.id}:rejected",
                    data={**data, "reason": reason},
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


def smart_order_message(parent) -> Message | None:
    """The message of a smart order that closed (filled, or cancelled with what filled), keyed
    as any order's (``spot:<id>:filled`` / ``:cancelled``), so closing it again tells nothing."""
    if parent.user_id in silent_users() or parent.status not in (SpotStatus.FILLED, SpotStatus.CANCELLED):
        return None
    base, quote = parent.symbol.split("-")
    side = "Buy" if parent.side == "buy" else "Sell"
    what = f"{side} {parent.symbol} order {parent.pk}"
    shown, shown_quote = display_amount(parent.filled_quantity, base), display_amount(parent.filled_quote, quote)
    data = {
        "order_id": parent.pk,
        "symbol": parent.symbol,
        "side": parent.side,
        "type": parent.type,
        "route": "smart",
        "status": parent.status,
        "filled_quantity": fmt(base, parent.filled_quantity),
        "filled_quote": fmt(quote, parent.filled_quote),
    }
    if parent.status == SpotStatus.FILLED:
        return Message(
            user_id=parent.user_id,
            kind="order_filled",
            title=f"{what} filled",
            body=f"Filled {shown} {base} for {shown_quote} {quote}.",
            dedupe_key=f"spot:{parent.pk}:filled",
            data=data,
        )
    reason = str(parent.cancel_reason or "cancelled")
    done = f" {shown} {base} of it had filled." if parent.filled_quantity else " Nothing of it had filled."
    return Message(
        user_id=parent.user_id,
        kind="order_cancelled",
        title=f"{what} cancelled",
        body=f"Reason: {reason.replace('_', ' ')}.{done} The rest of its hold is released.",
        dedupe_key=f"spot:{parent.pk}:cancelled",
        data={**data, "reason": reason},
    )


def block_trade_told(quote) -> None:
    """An accepted RFQ quote is a block trade filled at the quote's price: told once (its key
    is the quote's), in the accepting transaction; the market maker is not told."""
    if quote.user_id in silent_users():
        return
    base, asset = quote.symbol.split("-")
    bought = quote.side == "buy"
    shown, price, total = (
        display_amount(quote.quantity, base),
        display_amount(quote.price, asset),
        display_amount(quote.quote_amount, asset),
    )
    notify_many(
        [
            Message(
                user_id=quote.user_id,
                kind="order_filled",
                title=f"{'Buy' if bought else 'Sell'} {quote.symbol} block trade filled",
                body=f"{'Bought' if bought else 'Sold'} {shown} {base} at {price} {asset} from the exchange's "
                f"quote: {total} {asset} {'paid' if bought else 'received'}.",
                dedupe_key=f"rfq:{quote.pk}:filled",
                data={
                    "quote_id": str(quote.pk),
                    "symbol": quote.symbol,
                    "side": quote.side,
                    "route": "rfq",
                    "status": "filled",
                    "filled_quantity": fmt(base, quote.quantity),
                    "price": fmt(asset, quote.price),
                    "filled_quote": fmt(asset, quote.quote_amount),
                },
            )
        ]
    )


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
