"""Hypothesis state machine over transfers, holds (post, partial post, void), linked batches
and idempotent replays. After every step the ledger must match a plain model of balances,
recompute cleanly from its transfers and balance per asset."""

import contextlib
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from ledger.models import SystemRole, TransferKind
from ledger.selectors import balance_of, ledger_recompute
from ledger.services import (
    IdempotencyConflict,
    LedgerRejected,
    TransferRequest,
    system_account,
    transfers_commit,
    user_account,
)
from tests.factories import UserFactory

ASSETS = ["USDT", "BTC"]
amounts = st.integers(min_value=1, max_value=5_000).map(lambda n: Decimal(n) / 100)
# Deposits are larger than spends so that most holds and payments go through.
deposits = st.integers(min_value=1_000, max_value=100_000).map(lambda n: Decimal(n) / 100)


class LedgerMachine(RuleBasedStateMachine):
    users: list = []
    holds = Bundle("holds")
    done = Bundle("done")

    def __init__(self):
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.counter = 0
        self.available = {(u.pk, a): Decimal(0) for u in self.users for a in ASSETS}
        self.held = {(u.pk, a): Decimal(0) for u in self.users for a in ASSETS}

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    def _id(self, prefix):
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def _pay_request(self, transfer_id, user, asset, amount, kind=TransferKind.POSTED, role=SystemRole.FEES):
        return TransferRequest(
            id=transfer_id,
            code="sm",
            kind=kind,
            asset=asset,
            amount=amount,
            debit=user_account(user_id=user.pk, asset=asset),
            credit=system_account(role=role, asset=asset, key=transfer_id),
        )

    @initialize()
    def opening_deposits(self):
        for index in range(len(self.users)):
            for asset in ASSETS:
                self.deposit(index, asset, Decimal(200))

    @rule(target=done, user_index=st.integers(0, 2), asset=st.sampled_from(ASSETS), amount=deposits)
    def deposit(self, user_index, asset, amount):
        user = self.users[user_index]
        transfer_id = self._id("dep")
        request = TransferRequest(
            id=transfer_id,
            code="deposit",
            asset=asset,
            amount=amount,
            debit=system_account(role=SystemRole.EXTERNAL, asset=asset, key=transfer_id),
            credit=user_account(user_id=user.pk, asset=asset),
        )
        transfers_commit([request])
        self.available[(user.pk, asset)] += amount
        return request

    @rule(target=done, user_index=st.integers(0, 2), asset=st.sampled_from(ASSETS), amount=amounts)
    def pay(self, user_index, asset, amount):
        user = self.users[user_index]
        request = self._pay_request(self._id("pay"), user, asset, amount)
        if amount > self.available[(user.pk, asset)]:
            with pytest.raises(LedgerRejected) as caught:
                transfers_commit([request])
            assert caught.value.code == "insufficient_funds"
        else:
            transfers_commit([request])
            self.available[(user.pk, asset)] -= amount
        return request

    @rule(target=done, a=st.integers(0, 2), b=st.integers(0, 2), asset=st.sampled_from(ASSETS), amount=amounts)
    def move(self, a, b, asset, amount):
        if a == b:
            return multiple()
        payer, payee = self.users[a], self.users[b]
        request = TransferRequest(
            id=self._id("move"),
            code="sm",
            asset=asset,
            amount=amount,
            debit=user_account(user_id=payer.pk, asset=asset),
            credit=user_account(user_id=payee.pk, asset=asset),
        )
        if amount > self.available[(payer.pk, asset)]:
            with pytest.raises(LedgerRejected):
                transfers_commit([request])
        else:
            transfers_commit([request])
            self.available[(payer.pk, asset)] -= amount
            self.available[(payee.pk, asset)] += amount
        return request

    @rule(target=holds, user_index=st.integers(0, 2), asset=st.sampled_from(ASSETS), amount=amounts)
    def hold(self, user_index, asset, amount):
        user = self.users[user_index]
        request = self._pay_request(
            self._id("hold"), user, asset, amount, kind=TransferKind.PENDING, role=SystemRole.EXTERNAL
        )
        if amount > self.available[(user.pk, asset)]:
            with pytest.raises(LedgerRejected):
                transfers_commit([request])
            return multiple()
        transfers_commit([request])
        self.available[(user.pk, asset)] -= amount
        self.held[(user.pk, asset)] += amount
        return (user, asset, amount, request.id)

    @rule(hold=consumes(holds), fraction=st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("0.01")]))
    def post(self, hold, fraction):
        user, asset, amount, hold_id = hold
        part = (amount * fraction).quantize(Decimal("0.01"))
        if part <= 0:
            part = amount
        transfers_commit(
            [
                TransferRequest(
                    id=f"{hold_id}:post", code="sm", kind=TransferKind.POST_PENDING, pending_id=hold_id, amount=part
                )
            ]
        )
        self.held[(user.pk, asset)] -= amount
        self.available[(user.pk, asset)] += amount - part
        # Resolved once: a second resolution is refused and changes nothing.
        with pytest.raises(LedgerRejected) as caught:
            transfers_commit(
                [TransferRequest(id=f"{hold_id}:void", code="sm", kind=TransferKind.VOID_PENDING, pending_id=hold_id)]
            )
        assert caught.value.code == "pending_already_resolved"

    @rule(hold=consumes(holds))
    def void(self, hold):
        user, asset, amount, hold_id = hold
        transfers_commit(
            [TransferRequest(id=f"{hold_id}:void", code="sm", kind=TransferKind.VOID_PENDING, pending_id=hold_id)]
        )
        self.held[(user.pk, asset)] -= amount
        self.available[(user.pk, asset)] += amount

    @rule(a=st.integers(0, 2), b=st.integers(0, 2), asset=st.sampled_from(ASSETS), x=amounts, y=amounts)
    def linked(self, a, b, asset, x, y):
        ua, ub = self.users[a], self.users[b]
        first = self._pay_request(self._id("link"), ua, asset, x)
        second = self._pay_request(self._id("link"), ub, asset, y)
        need_a = x + (y if a == b else 0)
        fits = need_a <= self.available[(ua.pk, asset)] and (a == b or y <= self.available[(ub.pk, asset)])
        if fits:
            transfers_commit([first, second])
            self.available[(ua.pk, asset)] -= x
            self.available[(ub.pk, asset)] -= y
        else:
            with pytest.raises(LedgerRejected):
                transfers_commit([first, second])

    @rule(request=done)
    def replay(self, request):
        before = dict(self.available)
        with contextlib.suppress(LedgerRejected):  # a refused id stays refused
            transfers_commit([request])
        assert self.available == before

    @rule(request=done, extra=amounts)
    def conflicting_replay(self, request, extra):
        changed = TransferRequest(**{**request.__dict__, "amount": Decimal(str(request.amount)) + extra})
        with pytest.raises(IdempotencyConflict):
            transfers_commit([changed])

    @invariant()
    def balances_match_the_model(self):
        for user in self.users:
            for asset in ASSETS:
                balance = balance_of(user=user, asset=asset)
                assert balance.available == self.available[(user.pk, asset)]
                assert balance.held == self.held[(user.pk, asset)]
                assert balance.available >= 0

    @invariant()
    def books_recompute_and_balance(self):
        report = ledger_recompute()
        assert report.ok, (report.mismatched, report.negative, report.unbalanced_assets)


@pytest.mark.django_db
def test_ledger_state_machine():
    LedgerMachine.users = [UserFactory() for _ in range(3)]
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=20, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
