"""The wallet's history as a trader reads it: a label for each movement instead of its
ledger code, the amount signed as it moves the trader's money, the hold an order or a
withdrawal placed (and whether it was used or released), and a link to what caused it.

Amounts are signed by what they do to the trader: a posted transfer in is ``+``, out is
``−`` (the *total* balance moves); a hold is ``−`` and its release ``+`` (only the *available*
balance moves: the status says Held, Used or Released).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trading import checks

from .models import TransferKind

# code -> label of the posted movement
LABELS = {
    "deposit": "Deposit",
    "faucet": "Demo faucet",
    "withdrawal": "Withdrawal",
    "withdrawal_fee": "Withdrawal fee",
    "spot_hold": "Order hold",
    "venue_hold": "Order hold",
    "spot_fill": "Spot fill",
    "venue_fill": "Spot fill (routed)",
    "spot_release": "Order hold released",
    "venue_release": "Order hold released",
    "spot_fee": "Fee",
    "venue_fee": "Fee",
    "rfq_trade": "RFQ trade",
    "option_open": "Option bought",
    "option_close": "Option sold",
    "option_exercise": "Option exercised",
}
# code -> label of a hold placed under it, and of its release
HOLD_LABELS = {
    "withdrawal": ("Withdrawal hold", "Withdrawal hold released"),
    "withdrawal_fee": ("Withdrawal fee hold", "Withdrawal fee hold released"),
}
ORDER_HOLD = ("Order hold", "Order hold released")


@dataclass(frozen=True)
class HistoryRow:
    transfer_id: str
    created_at: object
    code: str
    kind: str
    label: str
    asset: str
    amount: Decimal
    signed: Decimal
    status: str  # posted, held, used, released, release
    reference: str
    reference_text: str
    link: str


def label_for(code: str, kind: str) -> str:
    hold, release = HOLD_LABELS.get(code, ORDER_HOLD)
    if kind == TransferKind.PENDING:
        return hold
    if kind == TransferKind.VOID_PENDING:
        return release
    return LABELS.get(code) or code.replace("_", " ").capitalize()


def _status(transfer) -> str:
    if transfer.kind == TransferKind.PENDING:
        resolution = getattr(transfer, "resolution", None)
        if resolution == TransferKind.POST_PENDING:
            return "used"
        if resolution == TransferKind.VOID_PENDING:
            return "released"
        return "held"
    if transfer.kind == TransferKind.VOID_PENDING:
        return "release"
    return "posted"


REFERENCE_NAMES = {
    "spot_order": "Spot order",
    "option_order": "Option order",
    "option_exercise": "Option exercise",
    "withdrawal": "Withdrawal",
    "rfq": "RFQ quote",
}


def reference_text(reference: str) -> str:
    """``spot_order:73`` → ``Spot order #73``; a deposit's transaction id stays as it is."""
    kind, _, key = reference.partition(":")
    name = REFERENCE_NAMES.get(kind)
    if name is None or not key:
        return reference
    return f"{name} #{key}" if key.isdigit() else name


def _own_link(reference: str) -> str:
    kind, _, key = reference.partition(":")
    if kind == "withdrawal" and key.isdigit():
        return f"#withdrawal-{key}"
    return ""


def history_rows(transfers) -> list[HistoryRow]:
    """``transfers`` from ``selectors.history_for`` (annotated with direction and resolution)."""
    transfers = list(transfers)
    references = {t.reference for t in transfers if t.reference}
    # orders (a higher app) say where its orders are shown: {reference: url}
    links = checks.figure("transfer_links", {}, references=references) if references else {}
    rows = []
    for t in transfers:
        status = _status(t)
        if status in ("held", "used", "released"):
            signed = -t.amount  # the hold takes it from what is available
        elif status == "release":
            signed = t.amount  # back to available
        else:
            signed = t.amount if t.direction == "in" else -t.amount
        rows.append(
            HistoryRow(
                transfer_id=t.pk,
                created_at=t.created_at,
                code=t.code,
                kind=t.kind,
                label=label_for(t.code, t.kind),
                asset=t.asset,
                amount=t.amount,
                signed=signed,
                status=status,
                reference=t.reference,
                reference_text=reference_text(t.reference),
                link=links.get(t.reference) or _own_link(t.reference),
            )
        )
    return rows
