"""Ledger reads: balances, history and the audit's recomputation."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Case, Exists, OuterRef, Q, Subquery, Sum, Value, When

from trading.db import Read, sql_int, sql_name
from trading.money import ASSETS

from .models import AccountKind, LedgerAccount, Transfer, TransferKind, Withdrawal


@dataclass(frozen=True)
class Balance:
    asset: str
    available: Decimal
    held: Decimal
    total: Decimal


def balances_for(*, user) -> list[Balance]:
    accounts = {a.asset: a for a in LedgerAccount.objects.filter(kind=AccountKind.USER, user=user)}
    result = []
    for asset in ASSETS:
        account = accounts.get(asset)
        if account is None:
            result.append(Balance(asset, Decimal(0), Decimal(0), Decimal(0)))
        else:
            result.append(Balance(asset, account.available, account.held, account.balance))
    return result


def total_read(*, user_id: int, asset: str) -> Read:
    """One asset's total balance (held included), as a read order entry sends with its others
    (``trading.db.read_together``): its risk checks read the holding for every buy."""
    sql = (
        f"SELECT credits_posted, debits_posted FROM {LedgerAccount._meta.db_table} "
        f"WHERE user_id = {sql_int(user_id)} AND asset = {sql_name(asset)}"
    )
    return Read.one(sql, _total)


@dataclass(frozen=True)
class HoldAccounts:
    """A trader's account in one asset (None until it exists) and the buckets of a system
    role in that asset that exist, by bucket number."""

    user: LedgerAccount | None
    buckets: dict[int, LedgerAccount]


_ACCOUNT_KEYS = ("id", "code", "asset", "kind", "user_id", "role", "bucket")


def hold_accounts_read(*, user_id: int, asset: str, role: str) -> Read:
    """The accounts a hold moves funds between - the trader's in ``asset`` and every bucket of
    system role ``role`` in it (which bucket takes a hold depends on the order's id, known
    only after its insert) - as a read order entry sends with its others
    (``trading.db.read_together``). The accounts carry their identifying fields only; their
    counters load if read (a transfer needs none)."""
    sql = (
        f"SELECT {', '.join(_ACCOUNT_KEYS)} FROM {LedgerAccount._meta.db_table} "
        f"WHERE asset = {sql_name(asset)} AND ((kind = '{AccountKind.USER}' AND user_id = {sql_int(user_id)}) "
        f"OR (kind = '{AccountKind.SYSTEM}' AND role = {sql_name(role)}))"
    )
    return Read.one(sql, _hold_accounts)


def _hold_accounts(rows) -> HoldAccounts:
    accounts = [LedgerAccount.from_db("default", _ACCOUNT_KEYS, row) for row in rows]
    user = next((account for account in accounts if account.kind == AccountKind.USER), None)
    return HoldAccounts(user, {a.bucket: a for a in accounts if a.kind == AccountKind.SYSTEM})


def _total(rows) -> Decimal:
    if not rows:
        return Decimal(0)
    field = LedgerAccount._meta.get_field("credits_posted")  # integer units on SQLite
    credits, debits = (field.from_db(value, connection) for value in rows[0])
    return credits - debits


def balance_of(*, user, asset: str) -> Balance:
    return next(b for b in balances_for(user=user) if b.asset == asset)


def history_for(*, user):
    """The user's transfers, newest first, annotated with direction and hold state (a hold's
    ``resolution``: the kind of the transfer that posted or voided it, None while it holds)."""
    account_ids = list(LedgerAccount.objects.filter(kind=AccountKind.USER, user=user).values_list("pk", flat=True))
    resolved = Transfer.objects.filter(pending=OuterRef("pk"))
    return (
        Transfer.objects.filter(Q(debit_account_id__in=account_ids) | Q(credit_account_id__in=account_ids))
        .annotate(
            direction=Case(When(credit_account_id__in=account_ids, then=Value("in")), default=Value("out")),
            is_resolved=Exists(resolved),
            resolution=Subquery(resolved.values("kind")[:1]),
        )
        .order_by("-created_at", "-id")
    )


def withdrawals_for(*, user):
    return Withdrawal.objects.filter(user=user)


def withdrawal_addresses_of(*, user):
    """The trader's withdrawal address book, by asset and label."""
    from .models import WithdrawalAddress

    return WithdrawalAddress.objects.filter(user=user).order_by("asset", "label", "id")


def withdrawal_get(*, user, withdrawal_id: int) -> Withdrawal:
    from trading.errors import NotFound

    withdrawal = Withdrawal.objects.filter(user=user, pk=withdrawal_id).first()
    if withdrawal is None:
        raise NotFound("Withdrawal not found.")
    return withdrawal


# --- audit --------------------------------------------------------------------------------------


@dataclass
class AuditReport:
    accounts: int
    transfers: int
    mismatched: list[str]
    negative: list[str]
    unbalanced_assets: list[str]
    totals: dict[str, dict[str, Decimal]]

    @property
    def ok(self) -> bool:
        return not (self.mismatched or self.negative or self.unbalanced_assets)


def _sums(qs, group: str) -> dict[int, Decimal]:
    return {row[group]: row["total"] for row in qs.values(group).annotate(total=Sum("amount"))}


def ledger_recompute() -> AuditReport:
    """Recompute every account's counters from the transfers and check the invariants:
    counters match, Σ debits = Σ credits per asset, no trader (and no system account except
    the external world) below zero.

    On PostgreSQL every read is of one snapshot (a read-only REPEATABLE READ transaction):
    on a live platform, transfers committed between the sums and the accounts' scan would
    otherwise show as counters that do not match."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return _recompute()
    return _recompute()


def _recompute() -> AuditReport:
    posted = Transfer.objects.filter(kind__in=[TransferKind.POSTED, TransferKind.POST_PENDING])
    open_holds = Transfer.objects.filter(kind=TransferKind.PENDING).exclude(
        Exists(Transfer.objects.filter(pending=OuterRef("pk")))
    )
    expected = defaultdict(lambda: [Decimal(0)] * 4)
    for index, (qs, group) in enumerate(
        [
            (posted, "debit_account_id"),
            (posted, "credit_account_id"),
            (open_holds, "debit_account_id"),
            (open_holds, "credit_account_id"),
        ]
    ):
        for account_id, total in _sums(qs, group).items():
            expected[account_id][index] = total

    mismatched, negative = [], []
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    system_roles: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    count = 0
    for account in LedgerAccount.objects.order_by("pk").iterator(chunk_size=2000):
        count += 1
        actual = [account.debits_posted, account.credits_posted, account.debits_pending, account.credits_pending]
        if actual != expected.get(account.pk, [Decimal(0)] * 4):
            mismatched.append(f"{account.code}: stored {actual} recomputed {expected.get(account.pk)}")
        for name, value in zip(("debits_posted", "credits_posted", "debits_pending", "credits_pending"), actual):
            totals[account.asset][name] += value
        if account.kind == AccountKind.USER and account.available < 0:
            negative.append(f"{account.code}: available {account.available}")
        elif account.kind == AccountKind.SYSTEM:
            system_roles[(account.role, account.asset)] += account.balance
    for (role, asset), balance in system_roles.items():
        if balance < 0 and role not in NEGATIVE_ALLOWED_ROLES:
            negative.append(f"system {role} {asset}: balance {balance}")
    unbalanced = [
        f"{asset}: debits {t['debits_posted']} != credits {t['credits_posted']} "
        f"(pending {t['debits_pending']} / {t['credits_pending']})"
        for asset, t in totals.items()
        if t["debits_posted"] != t["credits_posted"] or t["debits_pending"] != t["credits_pending"]
    ]
    return AuditReport(
        accounts=count,
        transfers=Transfer.objects.count(),
        mismatched=mismatched,
        negative=negative,
        unbalanced_assets=unbalanced,
        totals={asset: dict(values) for asset, values in totals.items()},
    )


# The counter's clearing book carries its trading result and may be short between
# settlements; the system wallet is short the underlying of an opening buy (or USDT of a
# close) from settlement step 1 until step 4 brings the swap's proceeds back — that short is
# the in-flight hedge exposure the back office closes. Every other system role holds real
# assets and must not go below zero.
NEGATIVE_ALLOWED_ROLES = {"option_clearing", "treasury"}
