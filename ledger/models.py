"""Double-entry ledger (after TigerBeetle): accounts with posted/pending counters and
immutable transfers with client-chosen ids.

Balance convention: every account is read from the platform's side as a liability, so a
trader's balance is ``credits_posted - debits_posted`` and what they can spend is that minus
``debits_pending`` (their holds). The external-world account is the mirror image of all
deposits minus withdrawals and is the only account allowed below zero.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from trading.fields import amount_field


class AccountKind(models.TextChoices):
    USER = "user", "Trader"
    SYSTEM = "system", "System"
    EXTERNAL = "external", "External world"


class SystemRole(models.TextChoices):
    TREASURY = "treasury", "Treasury (system wallet)"
    FEES = "fees", "Fees"
    VENUE_FUNDING = "venue_funding", "Venue funding"
    OPTION_CLEARING = "option_clearing", "Option clearing"
    SPOT_CLEARING = "spot_clearing", "Spot clearing (holds of open orders, trade legs)"
    MARKET_MAKER = "market_maker", "Market maker"
    EXTERNAL = "external", "External world"


class LedgerAccount(models.Model):
    code = models.CharField(max_length=80, unique=True)
    asset = models.CharField(max_length=8)
    kind = models.CharField(max_length=10, choices=AccountKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    role = models.CharField(max_length=20, choices=SystemRole.choices, blank=True)
    # Hot system accounts are split into buckets so concurrent transfers do not queue on
    # one row lock; the role's balance is the sum of its buckets.
    bucket = models.PositiveSmallIntegerField(default=0)
    debits_posted = amount_field(default=0)
    credits_posted = amount_field(default=0)
    debits_pending = amount_field(default=0)
    credits_pending = amount_field(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "asset"], condition=Q(kind="user"), name="ledger_one_account_per_user_asset"
            ),
            models.UniqueConstraint(
                fields=["role", "asset", "bucket"], condition=~Q(kind="user"), name="ledger_one_bucket_per_role"
            ),
            # A trader can never spend more than they have, holds included: enforced by the
            # database in the writing transaction, whatever code path wrote.
            models.CheckConstraint(
                condition=~Q(kind="user") | Q(credits_posted__gte=F("debits_posted") + F("debits_pending")),
                name="ledger_user_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(debits_posted__gte=0, credits_posted__gte=0, debits_pending__gte=0, credits_pending__gte=0),
                name="ledger_counters_not_negative",
            ),
        ]

    def __str__(self):
        return self.code

    @property
    def balance(self):
        return self.credits_posted - self.debits_posted

    @property
    def held(self):
        return self.debits_pending

    @property
    def available(self):
        return self.credits_posted - self.debits_posted - self.debits_pending


class TransferKind(models.TextChoices):
    POSTED = "posted", "Posted"
    PENDING = "pending", "Pending (hold)"
    POST_PENDING = "post_pending", "Post of a hold"
    VOID_PENDING = "void_pending", "Void of a hold"


class Transfer(models.Model):
    """Immutable. Created once, never updated or deleted."""

    id = models.CharField(primary_key=True, max_length=120)
    kind = models.CharField(max_length=12, choices=TransferKind.choices)
    asset = models.CharField(max_length=8)
    amount = amount_field()
    # Every index is written for every transfer (an engine batch inserts thousands), so the
    # table keeps only those its reads need: the account indexes below start with the account,
    # the hold's uniqueness index serves lookups by ``pending``, and ``reference`` is looked
    # up by equality (no pattern-ops twin).
    debit_account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="+", db_index=False)
    credit_account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="+", db_index=False)
    code = models.CharField(max_length=40, help_text="Reason, e.g. deposit, withdrawal, fee, trade.")
    reference = models.CharField(max_length=120, blank=True)
    pending = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resolutions", db_index=False
    )
    linked_to = models.CharField(max_length=120, blank=True, help_text="Id of the first transfer of a linked batch.")
    payload_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["debit_account", "-created_at"]),
            models.Index(fields=["credit_account", "-created_at"]),
            models.Index(fields=["reference"], name="transfer_reference"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_amount_positive"),
            models.CheckConstraint(condition=~Q(debit_account=F("credit_account")), name="transfer_distinct_accounts"),
            # A hold is resolved (posted or voided) exactly once.
            models.UniqueConstraint(
                fields=["pending"], condition=Q(pending__isnull=False), name="transfer_hold_resolved_once"
            ),
        ]

    def __str__(self):
        return f"{self.id}: {self.amount} {self.asset} {self.debit_account_id}->{self.credit_account_id}"


class TransferRejection(models.Model):
    """A refused transfer id, so that replaying it returns the same refusal."""

    id = models.CharField(primary_key=True, max_length=120)
    payload_hash = models.CharField(max_length=64)
    error_code = models.CharField(max_length=40)
    message = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.id}: refused ({self.error_code})"


class WithdrawalStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    AML_REVIEW = "aml_review", "Held for compliance review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class Withdrawal(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="withdrawals")
    asset = models.CharField(max_length=8)
    amount = amount_field()
    fee = amount_field()
    address = models.CharField(max_length=120)
    status = models.CharField(
        max_length=10, choices=WithdrawalStatus.choices, default=WithdrawalStatus.PENDING, db_index=True
    )
    idempotency_key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rejection_reason = models.CharField(max_length=300, blank=True)
    network_txid = models.CharField(max_length=120, blank=True)
    # The travel rule's data (FATF R.16 / EU 2023/1113): who receives it, whether the wallet
    # is hosted by a VASP (which one) or self-hosted (then the trader's attestation that they
    # own it, with its time). Required at or above the threshold; kept with the withdrawal.
    beneficiary = models.JSONField(default=dict, blank=True)
    # Why compliance holds it for review (status aml_review): the trader's AML score, say.
    review_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="withdrawal_idempotent_per_user",
            )
        ]
        # a trader's withdrawals by time: the AML rules read them per trader over a window
        indexes = [models.Index(fields=["user", "created_at"], name="ledger_withdrawal_user_at")]

    def __str__(self):
        return f"Withdrawal {self.pk} {self.amount} {self.asset} ({self.status})"

    @property
    def hold_id(self) -> str:
        return f"withdrawal:{self.pk}:hold"

    @property
    def fee_hold_id(self) -> str:
        return f"withdrawal:{self.pk}:fee-hold"


class WithdrawalAddress(models.Model):
    """An address in the trader's withdrawal address book, usable from ``usable_at`` (a set
    delay after it was added, so a thief who got in cannot add and use one at once)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="withdrawal_addresses")
    asset = models.CharField(max_length=8)
    address = models.CharField(max_length=120)
    network = models.CharField(max_length=16)
    label = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    usable_at = models.DateTimeField()

    class Meta:
        ordering = ["asset", "label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "asset", "address"], name="withdrawal_address_once_per_asset")
        ]

    def __str__(self):
        return f"{self.label} ({self.asset} {self.address})"
