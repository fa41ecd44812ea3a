"""Money events for the apps above the ledger (notifications, compliance), sent inside the
writing transaction after the event's audit record (which the ledger writes itself)."""

from django.dispatch import Signal

# kwargs: user, transfer, txid
deposit_credited = Signal()
# kwargs: withdrawal
withdrawal_requested = Signal()
# kwargs: withdrawal, actor
withdrawal_decided = Signal()
