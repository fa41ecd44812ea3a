"""One trigger's evaluation reads only what each rule needs (``selectors.trigger_history``):
on a realistic random history it must judge every trigger exactly as the rules do with their
whole horizon loaded (``selectors.history_for``)."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import KycProfile
from compliance import selectors, services
from compliance.models import AmlSignIn
from compliance.rules import Totals
from ledger.models import Withdrawal
from orders.spot.models import SpotTrade
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _rules():
    services.aml_rules_install_defaults()


def _history(rng: random.Random, users, now, money):
    """Deposits (many just under the reporting threshold, many small), withdrawals, trades
    between the traders, sign-ins sharing IPs and devices, some from a high-risk country; one
    trader dormant for most of a year; one whose KYC country is high-risk."""
    deposits, withdrawals, trades, signins = [], [], [], []
    for n, user in enumerate(users):
        moments = [now - timedelta(minutes=rng.randint(4 * 1440, 200 * 1440)) for _ in range(60)]
        if n == 0:  # dormant: a burst long ago, then movements in the last days
            moments = [now - timedelta(days=300, minutes=m) for m in range(10)]
        if n == 2:  # young: nothing before its first deposit
            moments = []
        if n != 1:
            moments += [now - timedelta(minutes=rng.randint(1, 2 * 1440)) for _ in range(25)]
        planned = [(rng.random(), None, at) for at in moments]
        if n == 0:  # reactivated with a large deposit
            planned.append((0.0, Decimal(30000), now - timedelta(hours=60)))
        if n == 1:  # many small deposits in the last hours, then all of them out at once
            smalls = [Decimal(rng.randint(100, 900)) for _ in range(12)]
            planned += [(0.0, amount, now - timedelta(minutes=300 - m)) for m, amount in enumerate(smalls)]
            planned.append((0.6, sum(smalls), now - timedelta(minutes=30)))
        if n == 2:  # a young account's first deposit, large
            planned.append((0.0, Decimal(20000), now - timedelta(hours=62)))
        for pick, amount, at in planned:
            amount = amount or rng.choice(
                [Decimal(rng.randint(9000, 9999)), Decimal(rng.randint(5, 1000)), Decimal(rng.randint(50, 60000))]
            )
            if pick < 0.5:
                deposits.append((user, amount, at))
            elif pick < 0.75:
                withdrawals.append((Withdrawal(user=user, asset="USDT", amount=amount, fee=1), at))
            elif pick < 0.85:
                other = rng.choice(users[1:])  # the dormant trader stays dormant
                trades.append((user, other, amount, at))
            else:
                signins.append(
                    AmlSignIn(
                        user=user,
                        at=at,
                        ip=f"10.0.0.{rng.randint(1, 4)}",
                        device=f"device-{rng.randint(1, 3)}",
                        country=rng.choice(["", "", "FR", "KP"]),
                    )
                )
    for user, amount, at in deposits:
        money.deposit(user, amount, ago=timezone.now() - at)
    for withdrawal, at in withdrawals:
        withdrawal.save()
        Withdrawal.objects.filter(pk=withdrawal.pk).update(created_at=at)
    for seq, (user, other, amount, at) in enumerate(trades, start=1):
        SpotTrade.objects.create(
            symbol="BTC-USDT",
            seq=seq,
            price=Decimal("65000"),
            quantity=amount / Decimal("65000"),
            quote_amount=amount,
            taker_side="buy",
            maker_order_id=1,
            taker_order_id=2,
            maker_user=other,
            taker_user=user,
            maker_fee=Decimal(0),
            taker_fee=Decimal(0),
            created_at=at,
        )
    AmlSignIn.objects.bulk_create(signins)


def test_one_triggers_evaluation_equals_the_whole_horizons(settings, money):
    settings.AML_HIGH_RISK_COUNTRIES = ["KP", "IR"]
    rng = random.Random(2026)
    now = timezone.now()
    users = [UserFactory() for _ in range(5)]
    for n, user in enumerate(users):
        user.date_joined = now - timedelta(days=[500, 400, 20, 45, 10][n])
        user.save(update_fields=["date_joined"])
    KycProfile.objects.filter(user=users[3]).update(country="IR")
    _history(rng, users, now, money)

    rules = selectors.live_rules()
    start = now - selectors.horizon(rules) - timedelta(days=1)
    compared = hits_seen = 0
    for user in users:
        whole = selectors.history_for(user_ids=[user.pk], start=start)
        triggers = [r for r in whole.records[user.pk] if r.at >= now - timedelta(days=3)]
        triggers = [r for r in triggers if not r.id.startswith("last_activity:")]
        assert triggers
        for record in triggers:
            if record.id.startswith("last_activity:"):
                continue
            old = selectors.history_for(user_ids=[user.pk], start=start, trigger=record.id)
            expected = services.hits_for_user(rules=rules, history=old, user_id=user.pk, trigger_id=record.id)
            live, narrow = selectors.trigger_history(user_id=user.pk, trigger=record.id, now=now)
            assert [r.code for r in live] == [r.code for r in rules]
            assert isinstance(narrow.totals[user.pk], Totals)
            assert len(narrow.records[user.pk]) <= len(old.records[user.pk])
            got = services.hits_for_user(rules=rules, history=narrow, user_id=user.pk, trigger_id=record.id)
            assert got == expected, record
            compared += 1
            hits_seen += len(expected)
    codes = set()
    for user in users:
        whole = selectors.history_for(user_ids=[user.pk], start=start)
        for hit in services.hits_for_user(rules=rules, history=whole, user_id=user.pk, since=now - timedelta(days=3)):
            codes.add(hit.rule_code)
    # the history is rich enough to raise most rules
    assert compared > 100 and hits_seen > 20
    assert set(services.MEASURES) <= codes, codes


def test_a_trigger_that_is_not_the_traders_reads_nothing(user):
    other = UserFactory()
    signin = AmlSignIn.objects.create(user=other, ip="10.9.9.9", device="d", country="")
    rules, history = selectors.trigger_history(user_id=user.pk, trigger=f"signin:{signin.pk}", now=timezone.now())
    assert rules and not history.records
    rules, history = selectors.trigger_history(user_id=user.pk, trigger="withdrawal:abc", now=timezone.now())
    assert rules and not history.records


def test_the_scans_candidates_miss_no_hit(settings, money):
    """The scan judges only the records that the set-based SQL finds a rule may raise at: on
    the same history, it finds every hit that judging every record finds, and judges fewer."""
    settings.AML_HIGH_RISK_COUNTRIES = ["KP", "IR"]
    rng = random.Random(7)
    now = timezone.now()
    users = [UserFactory() for _ in range(5)]
    for n, user in enumerate(users):
        user.date_joined = now - timedelta(days=[500, 400, 20, 45, 10][n])
        user.save(update_fields=["date_joined"])
    KycProfile.objects.filter(user=users[3]).update(country="IR")
    _history(rng, users, now, money)

    rules = selectors.live_rules()
    since = now - timedelta(days=3)
    start = since - selectors.horizon(rules) - timedelta(days=1)
    candidates = selectors.scan_candidates(rules=rules, since=since)
    assert candidates is not None and candidates[users[3].pk] is None  # high-risk KYC: every record
    history = selectors.history_for(user_ids=[u.pk for u in users], start=start)
    judged = every = 0
    codes = set()
    for user in users:
        expected = services.hits_for_user(rules=rules, history=history, user_id=user.pk, since=since)
        only = candidates.get(user.pk, {})
        got = services.hits_for_user(rules=rules, history=history, user_id=user.pk, since=since, only=only)
        assert got == expected
        codes |= {hit.rule_code for hit in expected}
        mine = sum(1 for r in history.records[user.pk] if r.at >= since)
        every += mine
        judged += mine if only is None else len(only)
    assert set(services.MEASURES) <= codes, codes
    assert judged < every
    assert selectors.triggers_since(since=since, user_ids=[u.pk for u in users]) == every

    # as the scan runs it: velocity measured by the candidates' query, the other rules judged
    # at their candidates; the same hits in the same order
    velocity = {}
    candidates = selectors.scan_candidates(rules=rules, since=since, velocity=velocity)
    assert all("VELOCITY" not in rules_at for only in candidates.values() for rules_at in (only or {}).values())
    measured = 0
    for user in users:
        expected = services.hits_for_user(rules=rules, history=history, user_id=user.pk, since=since)
        only = candidates.get(user.pk, {})
        rows = None if only is None else velocity.get(user.pk)
        got = services.scan_hits_for_user(
            rules=rules, history=history, user_id=user.pk, since=since, only=only, velocity=rows
        )
        assert got == expected
        measured += sum(1 for hit in got if hit.rule_code == "VELOCITY") if rows else 0
    assert measured > 0


def test_activity_at_the_same_instant_is_not_before_a_movement(money):
    """Dormancy reads the latest activity strictly before a movement: a trade at the very
    instant of a reactivating deposit (and a second deposit then too) does not count as
    activity before it, in the scan's SQL as in the rules."""
    from ledger.models import Transfer

    now = timezone.now()
    dormant, other = UserFactory(), UserFactory()
    dormant.date_joined = now - timedelta(days=500)
    dormant.save(update_fields=["date_joined"])
    money.deposit(dormant, "500", ago=timedelta(days=300))
    at = now - timedelta(days=1)
    for amount in ("30000", "25000"):
        transfer = money.deposit(dormant, amount)
        Transfer.objects.filter(pk=transfer.pk).update(created_at=at)
    SpotTrade.objects.create(
        symbol="BTC-USDT", seq=1, price=Decimal("65000"), quantity=Decimal("0.01"), quote_amount=Decimal("650"),
        taker_side="buy", maker_order_id=1, taker_order_id=2, maker_user=other, taker_user=dormant,
        maker_fee=Decimal(0), taker_fee=Decimal(0), created_at=at,
    )  # fmt: skip

    rules = selectors.live_rules()
    since = now - timedelta(days=3)
    history = selectors.history_for(user_ids=[dormant.pk], start=since - selectors.horizon(rules) - timedelta(days=1))
    expected = services.hits_for_user(rules=rules, history=history, user_id=dormant.pk, since=since)
    assert sum(1 for hit in expected if hit.rule_code == "DORMANT_REACTIVATED") == 2, expected
    only = selectors.scan_candidates(rules=rules, since=since)[dormant.pk]
    assert sum(1 for codes in only.values() if "DORMANT_REACTIVATED" in codes) == 2, only
    got = services.hits_for_user(rules=rules, history=history, user_id=dormant.pk, since=since, only=only)
    assert got == expected
