"""Ledger writes: the transfer engine and the funding flows built on it."""

from .funding import (  # noqa: F401
    deposit_credit,
    faucet_credit,
    withdrawal_approve,
    withdrawal_create,
    withdrawal_hold_for_review,
    withdrawal_reject,
    withdrawal_request,
    withdrawal_sent_record,
)
from .transfers import (  # noqa: F401
    IdempotencyConflict,
    LedgerRejected,
    TransferRequest,
    system_account,
    system_bucket,
    transfers_commit,
    transfers_execute,
    user_account,
)
