"""The ledger legs of steps 1, 2 and 4, and the run of ledger-only steps over a batch.

| step | opening buy | close / exercise |
|---|---|---|
| 1 system accounts | clearing USDT -> treasury; treasury owes the coin | treasury pays USDT, takes the coin to sell |
| 2 funding transfer | treasury USDT -> venue funding | treasury BTC/ETH -> venue funding |
| 4 return | BTC/ETH -> treasury; dust and hedge slippage to the option book | USDT -> treasury; likewise |

Every leg's id is ``stl:<settlement>:<step>:<leg>`` and commits in the transaction that
advances the settlement past its step, so a step is either wholly done or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ledger.models import AccountKind, LedgerAccount, SystemRole
from ledger.services.transfers import (
    TransferRequest,
    system_account,
    system_bucket,
    transfers_execute,
)
from trading.money import quantize

from ..models import Settlement
from .state import advance, lock_batch

_ROLES = (SystemRole.OPTION_CLEARING, SystemRole.TREASURY, SystemRole.VENUE_FUNDING, SystemRole.EXTERNAL)


class Accounts:
    """The system accounts of one batch. All its legs use one bucket of each role and
    asset, picked by the batch's first settlement: a batch then updates a handful of
    account rows rather than up to 16 per role and asset, and two batches running at
    the same time rarely share a row. (The audit sums the buckets.)"""

    def __init__(self, batch: Sequence[Settlement]):
        self.key = batch[0].ref if batch else ""
        # Every account the batch may need, in one query; a missing one is created on use.
        rows = LedgerAccount.objects.filter(
            kind__in=(AccountKind.SYSTEM, AccountKind.EXTERNAL),
            role__in=_ROLES,
            bucket=system_bucket(self.key),
            user=None,
        )
        self._cache = {(a.role, a.asset): a for a in rows}

    def get(self, role: str, asset: str):
        if (role, asset) not in self._cache:
            self._cache[(role, asset)] = system_account(role=role, asset=asset, key=self.key)
        return self._cache[(role, asset)]


def transfer(
    settlement: Settlement, step: int, leg: str, asset: str, amount: Decimal, debit, credit
) -> TransferRequest:
    return TransferRequest(
        id=f"stl:{settlement.id}:{step}:{leg}",
        code=f"settlement_step{step}",
        asset=asset,
        amount=quantize(asset, amount),
        debit=debit,
        credit=credit,
        reference=settlement.ref,
    )


def ledger_step(settlement: Settlement, step: int, accounts: Accounts) -> list[TransferRequest]:
    """The legs of step 1, 2 or 4 for one settlement (step 4 needs step 3's fill)."""
    asset, usdt, qty = settlement.underlying, settlement.usdt, settlement.underlying_qty
    acct = accounts.get
    clearing, treasury, funding = SystemRole.OPTION_CLEARING, SystemRole.TREASURY, SystemRole.VENUE_FUNDING
    buy = settlement.buys_underlying
    legs: list[TransferRequest] = []
    if step == 1:
        if buy:  # the premium moves to the system wallet, which now owes the underlying
            legs.append(transfer(settlement, 1, "usdt", "USDT", usdt, acct(clearing, "USDT"), acct(treasury, "USDT")))
            legs.append(transfer(settlement, 1, "base", asset, qty, acct(treasury, asset), acct(clearing, asset)))
        else:  # the system wallet funds the payout and takes the underlying to sell
            legs.append(transfer(settlement, 1, "usdt", "USDT", usdt, acct(treasury, "USDT"), acct(clearing, "USDT")))
            legs.append(transfer(settlement, 1, "base", asset, qty, acct(clearing, asset), acct(treasury, asset)))
    elif step == 2:
        if buy:
            legs.append(transfer(settlement, 2, "usdt", "USDT", usdt, acct(treasury, "USDT"), acct(funding, "USDT")))
        else:
            legs.append(transfer(settlement, 2, "base", asset, qty, acct(treasury, asset), acct(funding, asset)))
    elif step == 4:
        # The swap's proceeds return to the system wallet; what the venue left on the
        # funding account (rounding dust) and the hedge's slippage and fee against the index
        # go to the option book (clearing), so the system wallet ends flat in both assets.
        if buy:
            legs.append(
                transfer(
                    settlement, 4, "base", asset, settlement.filled_qty, acct(funding, asset), acct(treasury, asset)
                )
            )
            legs.append(
                transfer(
                    settlement,
                    4,
                    "dust",
                    "USDT",
                    usdt - settlement.fill_cost,
                    acct(funding, "USDT"),
                    acct(clearing, "USDT"),
                )
            )
            legs.append(
                _true_up(settlement, asset, qty - settlement.filled_qty, acct(clearing, asset), acct(treasury, asset))
            )
        else:
            legs.append(
                transfer(
                    settlement, 4, "usdt", "USDT", settlement.fill_cost, acct(funding, "USDT"), acct(treasury, "USDT")
                )
            )
            legs.append(
                transfer(
                    settlement,
                    4,
                    "dust",
                    asset,
                    qty - settlement.filled_qty,
                    acct(funding, asset),
                    acct(clearing, asset),
                )
            )
            legs.append(
                _true_up(
                    settlement, "USDT", usdt - settlement.fill_cost, acct(clearing, "USDT"), acct(treasury, "USDT")
                )
            )
    else:
        raise ValueError(f"step {step} is not a ledger step")
    return [leg for leg in legs if leg.amount > 0]


def ledger_steps(batch: Sequence[Settlement], steps: Iterable[int], accounts: Accounts) -> list[TransferRequest]:
    steps = list(steps)
    return [leg for s in batch for step in steps for leg in ledger_step(s, step, accounts)]


def _true_up(settlement: Settlement, asset: str, shortfall: Decimal, clearing, treasury) -> TransferRequest:
    """The system wallet's shortfall (positive) is made good by the option book, its
    surplus (negative) goes to it."""
    if shortfall >= 0:
        return transfer(settlement, 4, "pnl", asset, shortfall, clearing, treasury)
    return transfer(settlement, 4, "pnl", asset, -shortfall, treasury, clearing)


def ledger_run(ids: Sequence[int], *, first: int, last: int) -> list[int]:
    """Ledger-only steps ``first``..``last`` (1..2, or 4) over a batch, in one transaction of
    its own: the row locks are the claim, and the legs commit with the step change. Returns
    the ids that completed ``last``."""
    started = timezone.now()
    with transaction.atomic(durable=True):
        batch = lock_batch(ids, first, started)
        if not batch:
            return []
        transfers_execute(ledger_steps(batch, range(first, last + 1), Accounts(batch)))
        advance(batch, last, started, timezone.now(), first=first)
    return [s.id for s in batch]
