"""Ledger writes. The only code that changes account counters.

``transfers_execute`` is the core: it runs inside the caller's transaction (a savepoint of
it), so a business operation and its money movements commit together. Standalone callers
use ``transfers_commit``, which also remembers refusals so that replaying a refused id
returns the same refusal.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from trading.errors import Conflict, DomainError, ValidationFailed
from trading.money import check_asset, parse_amount
from trading.pgarrays import unnest_arrays
from trading.pgcopy import copy_rows

from ..models import AccountKind, LedgerAccount, SystemRole, Transfer, TransferKind, TransferRejection

SYSTEM_BUCKETS = settings.LEDGER_SYSTEM_BUCKETS


class LedgerRejected(DomainError):
    """A transfer (or linked batch) was refused; nothing of it was applied."""

    status = 422

    def __init__(
        self, message: str, *, code: str, ids: Sequence[str] = (), hashes: Sequence[str] = (), status: int | None = None
    ):
        super().__init__(message, code=code, status=status)
        self.ids = list(ids)
        self.hashes = list(hashes)


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class Executed(list):
    """The transfers of a batch; ``replayed`` is True when they existed already (no effect now)."""

    replayed = False


def _as_replay(transfers: list[Transfer]) -> Executed:
    result = Executed(transfers)
    result.replayed = True
    return result


# --- accounts -------------------------------------------------------------------------------------


def user_account(*, user_id: int, asset: str) -> LedgerAccount:
    asset = check_asset(asset)
    account, _ = LedgerAccount.objects.get_or_create(
        kind=AccountKind.USER, user_id=user_id, asset=asset, defaults={"code": f"user:{user_id}:{asset}"}
    )
    return account


def system_bucket(key: str) -> int:
    """The bucket ``system_account`` picks for ``key`` (stable across processes)."""
    return zlib.crc32(key.encode()) % SYSTEM_BUCKETS if key else 0


def system_account(*, role: str, asset: str, key: str = "") -> LedgerAccount:
    """One bucket of a system role, chosen by ``key`` (e.g. the transfer id) so that
    concurrent transfers spread over the buckets instead of queueing on one row."""
    asset = check_asset(asset)
    role = SystemRole(role)
    bucket = system_bucket(key)
    kind = AccountKind.EXTERNAL if role == SystemRole.EXTERNAL else AccountKind.SYSTEM
    account, _ = LedgerAccount.objects.get_or_create(
        kind=kind, role=role, asset=asset, bucket=bucket, defaults={"code": f"sys:{role}:{asset}:{bucket}"}
    )
    return account


# --- transfers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferRequest:
    """One money movement. For a post or void, ``pending_id`` names the hold and the
    accounts and asset come from it; a post may give a smaller ``amount`` (partial post:
    the rest of the hold is released)."""

    id: str
    code: str
    kind: str = TransferKind.POSTED
    asset: str = ""
    amount: Decimal | str | None = None
    debit: LedgerAccount | None = None
    credit: LedgerAccount | None = None
    reference: str = ""
    pending_id: str | None = None


def _payload_hash(request: TransferRequest, amount: Decimal | None) -> str:
    parts = [
        request.kind,
        request.asset,
        "" if amount is None else f"{amount.normalize():f}",
        str(request.debit.pk if request.debit else ""),
        str(request.credit.pk if request.credit else ""),
        request.code,
        request.reference,
        request.pending_id or "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _check_request(request: TransferRequest) -> Decimal | None:
    if not request.id or len(request.id) > 120:
        raise DomainError("A transfer needs an id of 1 to 120 characters.", code="invalid_transfer_id")
    if request.kind in (TransferKind.POSTED, TransferKind.PENDING):
        if request.debit is None or request.credit is None:
            raise DomainError("A transfer needs a debit and a credit account.", code="invalid_transfer")
        asset = check_asset(request.asset)
        if request.debit.asset != asset or request.credit.asset != asset:
            raise DomainError("Both accounts must hold the transfer's asset.", code="asset_mismatch")
        if request.debit.pk == request.credit.pk:
            raise DomainError("Debit and credit accounts must differ.", code="same_account")
        return parse_amount(asset, request.amount)
    if request.kind in (TransferKind.POST_PENDING, TransferKind.VOID_PENDING):
        if not request.pending_id:
            raise DomainError("Posting or voiding needs the hold's id.", code="invalid_transfer")
        if request.kind == TransferKind.VOID_PENDING or request.amount is None:
            return None
        # The asset is the hold's; the scale check happens against it in _apply.
        try:
            return Decimal(str(request.amount))
        except ArithmeticError:
            raise ValidationFailed("amount is not a number.", fields={"amount": ["Not a decimal number."]}) from None
    raise DomainError(f"Unknown transfer kind {request.kind!r}.", code="invalid_transfer")


def _replayed(ids: list[str], hashes: list[str]) -> Executed | None:
    """The original outcome of ids seen before: their transfers, or their refusal raised
    again. One round trip when the ids are new, which is the hot path."""
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, payload_hash, 0 FROM {Transfer._meta.db_table} WHERE id IN ({placeholders}) UNION ALL "
            f"SELECT id, payload_hash, 1 FROM {TransferRejection._meta.db_table} WHERE id IN ({placeholders})",
            ids + ids,
        )
        seen = cursor.fetchall()
    if not seen:
        return None
    expected = dict(zip(ids, hashes))
    if any(expected[seen_id] != payload_hash for seen_id, payload_hash, _ in seen):
        raise IdempotencyConflict(
            "A transfer id was reused with a different payload.", fields={"id": [row[0] for row in seen]}
        )
    if any(rejected for _, _, rejected in seen):
        first = TransferRejection.objects.filter(pk__in=ids).order_by("created_at").first()
        raise LedgerRejected(first.message, code=first.error_code, ids=ids, hashes=hashes)
    if len(seen) != len(ids):
        raise IdempotencyConflict("Part of this linked batch exists already.", fields={"id": [row[0] for row in seen]})
    existing = Transfer.objects.in_bulk(ids)
    return _as_replay([existing[i] for i in ids])


def _prepare(requests: Sequence[TransferRequest]) -> tuple[list, list[str], list[str]]:
    amounts = [_check_request(request) for request in requests]
    hashes = [_payload_hash(request, amount) for request, amount in zip(requests, amounts)]
    ids = [request.id for request in requests]
    if len(set(ids)) != len(ids):
        raise DomainError("Transfer ids in one batch must be distinct.", code="duplicate_transfer_id")
    return amounts, hashes, ids


def transfers_execute(
    requests: Sequence[TransferRequest], *, known_new: bool = False, savepoint: bool = True
) -> Executed:
    """Apply a linked batch of transfers: all of them or none. Idempotent per id.

    Needs a transaction opened by the caller (runs in a savepoint of it). Account rows are
    updated in primary-key order, each with one conditional UPDATE, so concurrent batches
    neither deadlock nor overdraw: a trader account that would go below zero (holds
    included) makes the whole batch fail with ``insufficient_funds``.

    ``savepoint=False`` (with ``known_new``) is for a caller whose transaction ends on any
    error from here (order entry's, durable): a refused batch leaves its rows in that
    transaction, which rolls back whole, so the savepoint's two round trips buy nothing.
    """
    if not requests:
        return Executed()
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("transfers_execute needs the caller's transaction")
    amounts, hashes, ids = _prepare(requests)
    # known_new: the caller derives the ids from rows it has just decided (an engine batch),
    # so the replay lookup would find nothing; a duplicate would still fail the insert and
    # be settled below as a replay.
    replay = None if known_new else _replayed(ids, hashes)
    if replay is not None:
        return replay
    if not savepoint:
        if not known_new:
            raise RuntimeError("transfers_execute(savepoint=False) is for new ids only (known_new=True)")
        try:
            return Executed(_apply(requests, amounts, hashes))
        except LedgerRejected as exc:
            exc.ids, exc.hashes = ids, hashes
            raise
    try:
        with transaction.atomic():
            return Executed(_apply(requests, amounts, hashes))
    except IntegrityError:
        return _after_lost_race(ids, hashes)
    except LedgerRejected as exc:
        exc.ids, exc.hashes = ids, hashes
        raise


def _after_lost_race(ids: list[str], hashes: list[str]) -> Executed:
    """Another transaction committed one of these ids (or resolved the hold) first."""
    replay = _replayed(ids, hashes)
    if replay is not None:
        return replay
    raise LedgerRejected(
        "The hold was already posted or voided.", code="pending_already_resolved", ids=ids, hashes=hashes
    )


class _Hold(NamedTuple):
    kind: str
    asset: str
    amount: Decimal
    debit_account: LedgerAccount
    credit_account: LedgerAccount


def _holds(pending_ids: list[str]) -> dict[str, _Hold]:
    """The holds a batch posts or voids, with their accounts loaded once each (a runner's
    batch resolves thousands of holds over a few dozen accounts)."""
    if not pending_ids:
        return {}
    rows = list(
        Transfer.objects.filter(pk__in=pending_ids).values_list(
            "id", "kind", "asset", "amount", "debit_account_id", "credit_account_id"
        )
    )
    accounts = LedgerAccount.objects.in_bulk({row[4] for row in rows} | {row[5] for row in rows})
    return {row[0]: _Hold(row[1], row[2], row[3], accounts[row[4]], accounts[row[5]]) for row in rows}


def _apply(requests, amounts, hashes) -> list[Transfer]:
    pending_ids = [request.pending_id for request in requests if request.pending_id]
    holds = _holds(pending_ids)
    linked_to = requests[0].id if len(requests) > 1 else ""
    rows: list[Transfer] = []
    # account pk -> [debits_posted, credits_posted, debits_pending, credits_pending] deltas
    deltas: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    accounts: dict[int, LedgerAccount] = {}

    for request, amount, payload_hash in zip(requests, amounts, hashes):
        if request.kind in (TransferKind.POSTED, TransferKind.PENDING):
            debit, credit, asset, hold = request.debit, request.credit, request.asset.upper(), None
        else:
            hold = holds.get(request.pending_id)
            if hold is None:
                raise LedgerRejected(f"No hold with id {request.pending_id}.", code="pending_not_found", status=404)
            if hold.kind != TransferKind.PENDING:
                raise LedgerRejected(f"{request.pending_id} is not a hold.", code="not_a_hold")
            debit, credit, asset = hold.debit_account, hold.credit_account, hold.asset
            if request.kind == TransferKind.VOID_PENDING or amount is None:
                amount = hold.amount
            else:
                amount = parse_amount(asset, amount)
                if amount > hold.amount:
                    raise LedgerRejected("A hold cannot be posted for more than it holds.", code="exceeds_hold")
        accounts[debit.pk], accounts[credit.pk] = debit, credit
        d, c = deltas[debit.pk], deltas[credit.pk]
        if request.kind == TransferKind.POSTED:
            d[0] += amount
            c[1] += amount
        elif request.kind == TransferKind.PENDING:
            d[2] += amount
            c[3] += amount
        elif request.kind == TransferKind.POST_PENDING:
            d[2] -= hold.amount
            c[3] -= hold.amount
            d[0] += amount
            c[1] += amount
        else:
            d[2] -= hold.amount
            c[3] -= hold.amount
        rows.append(
            Transfer(
                id=request.id,
                kind=request.kind,
                asset=asset,
                amount=amount,
                debit_account_id=debit.pk,
                credit_account_id=credit.pk,
                code=request.code,
                reference=request.reference,
                pending_id=request.pending_id,
                linked_to=linked_to,
                payload_hash=payload_hash,
            )
        )

    # Insert first: a duplicate id or a hold resolved twice fails here, before any lock wait.
    if connection.vendor == "postgresql" and len(rows) >= _BULK_MIN:
        _insert_many(rows)
        refused = _update_many(accounts, deltas)
    else:
        Transfer.objects.bulk_create(rows)
        refused = next((pk for pk in sorted(deltas) if not _update_counters(accounts[pk], *deltas[pk])), None)
    if refused is not None:
        raise LedgerRejected(f"Insufficient {accounts[refused].asset} balance.", code="insufficient_funds", status=409)
    return rows


# Large batches (an engine runner's, a settlement step's) go to PostgreSQL in one round trip
# per table (COPY for the rows, one UPDATE for the counters): per-row statements would cost
# a round trip each.
_BULK_MIN = 16
_TRANSFER_COLUMNS = (
    "id",
    "kind",
    "asset",
    "amount",
    "debit_account_id",
    "credit_account_id",
    "code",
    "reference",
    "pending_id",
    "linked_to",
    "payload_hash",
    "created_at",
)
_TRANSFER_TYPES = (
    "text",
    "text",
    "text",
    "numeric",
    "bigint",
    "bigint",
    "text",
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
)


def _insert_many(rows: list[Transfer]) -> None:
    """The rows through binary COPY: no SQL to parse and no text to convert on either side.
    A duplicate id or a hold resolved twice fails the COPY with the same ``IntegrityError``
    as an INSERT would."""
    now = timezone.now()
    copy_rows(
        Transfer._meta.db_table,
        list(zip(_TRANSFER_COLUMNS, _TRANSFER_TYPES)),
        (
            (
                row.id,
                row.kind,
                row.asset,
                row.amount,
                row.debit_account_id,
                row.credit_account_id,
                row.code,
                row.reference,
                row.pending_id,
                row.linked_to,
                row.payload_hash,
                now,
            )
            for row in rows
        ),
    )
    for row in rows:
        row.created_at = now


def _update_many(accounts: dict[int, LedgerAccount], deltas: dict[int, list[Decimal]]) -> int | None:
    """Every account's counters in one UPDATE, after locking the rows in primary-key order
    (the order every writer locks in, so batches never deadlock). A trader account that
    would spend more than it has is left out by the UPDATE's condition: its id is returned
    and the caller refuses the batch."""
    ids = sorted(deltas)
    columns = [ids] + [[deltas[pk][n] for pk in ids] for n in range(4)]
    checks = []
    for pk in ids:
        debits_posted, credits_posted, debits_pending, _ = deltas[pk]
        spend = debits_posted + debits_pending - credits_posted
        checks.append(spend if accounts[pk].kind == AccountKind.USER and spend > 0 else None)
    table = LedgerAccount._meta.db_table
    arrays, values = unnest_arrays([*columns, checks], ["bigint"] + ["numeric"] * 5)
    with connection.cursor() as cursor:
        # FOR NO KEY UPDATE: the lock an UPDATE of the counters takes anyway. (FOR UPDATE would
        # also conflict with the key-share locks that inserting transfers puts on accounts,
        # and deadlock against a concurrent small batch that inserted first.)
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE", [values[0]]
        )
        cursor.execute(
            f"UPDATE {table} AS a SET debits_posted = a.debits_posted + v.dp, "
            "credits_posted = a.credits_posted + v.cp, debits_pending = a.debits_pending + v.dq, "
            "credits_pending = a.credits_pending + v.cq "
            f"FROM unnest({arrays}) AS v(id, dp, cp, dq, cq, spend) WHERE a.id = v.id "
            "AND (v.spend IS NULL OR a.credits_posted - a.debits_posted - a.debits_pending >= v.spend) RETURNING a.id",
            values,
        )
        updated = {row[0] for row in cursor.fetchall()}
    return next((pk for pk in ids if pk not in updated), None)


_COUNTERS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
_COUNTER_FIELD = LedgerAccount._meta.get_field("debits_posted")


def _db_amount(value: Decimal):
    """A counter delta as the column takes it (an integer count of units on SQLite)."""
    return _COUNTER_FIELD.get_db_prep_value(value, connection, prepared=True)


def _update_counters(account: LedgerAccount, *deltas: Decimal) -> bool:
    """One UPDATE of the counters that change; for a trader account that spends, only if
    what is available covers it. Plain SQL: this runs for every leg of every trade."""
    sets, params = [], []
    for column, delta in zip(_COUNTERS, deltas):
        if delta:
            sets.append(f"{column} = {column} + %s")
            params.append(_db_amount(delta))
    if not sets:
        return True
    sql = f"UPDATE {LedgerAccount._meta.db_table} SET {', '.join(sets)} WHERE id = %s"
    params.append(account.pk)
    debits_posted, credits_posted, debits_pending, _ = deltas
    spend = debits_posted + debits_pending - credits_posted
    if account.kind == AccountKind.USER and spend > 0:
        sql += " AND credits_posted - debits_posted - debits_pending >= %s"
        params.append(_db_amount(spend))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def transfers_commit(requests: Sequence[TransferRequest]) -> Executed:
    """Execute a linked batch in its own transaction; a refusal is recorded so a replay of
    the same ids returns it again. (No savepoint: a lost race is settled after rollback.)"""
    if not requests:
        return Executed()
    amounts, hashes, ids = _prepare(requests)
    try:
        with transaction.atomic(durable=True):
            replay = _replayed(ids, hashes)
            if replay is not None:
                return replay
            return Executed(_apply(requests, amounts, hashes))
    except IntegrityError:
        try:
            with transaction.atomic(durable=True):
                return _after_lost_race(ids, hashes)
        except LedgerRejected as exc:
            _record_rejection(exc)
            raise
    except LedgerRejected as exc:
        exc.ids, exc.hashes = ids, hashes
        _record_rejection(exc)
        raise


def _record_rejection(exc: LedgerRejected) -> None:
    if not exc.ids:
        return
    with transaction.atomic(durable=True):
        for transfer_id, payload_hash in zip(exc.ids, exc.hashes):
            TransferRejection.objects.get_or_create(
                id=transfer_id,
                defaults={"payload_hash": payload_hash, "error_code": exc.code, "message": exc.message[:300]},
            )
