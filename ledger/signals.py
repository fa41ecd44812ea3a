"""Money events for the audit trail and notifications. Sent inside the writing transaction."""

from django.dispatch import Signal

# kwargs: user, transfer, txid
deposit_credited = Signal()
# kwargs: withdrawal
withdrawal_requested = Signal()
# kwargs: withdrawal, actor
withdrawal_decided = Signal()
