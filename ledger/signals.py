"""Money events for the apps above the ledger (notifications, compliance), sent inside the
writing transaction after the event's audit record (which the ledger writes itself)."""

from django.dispatch import Signal

# kwargs: user, transfer, txid
deposit_credited = Signal()
# kwargs: withdrawal
withdrawal_requested = Signal()
# kwargs: withdrawal, actor (the trader's own cancel: the trader)
withdrawal_decided = Signal()
# kwargs: withdrawal, reason: held for compliance review (status aml_review), after its request
withdrawal_held = Signal()
# kwargs: withdrawal, actor: an approved withdrawal's network transaction recorded (the coins went out)
withdrawal_sent = Signal()
# kwargs: entry (WithdrawalAddress), just added to the trader's address book
withdrawal_address_added = Signal()
