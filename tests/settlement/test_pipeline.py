"""The four steps, in-process on PostgreSQL: ledger legs, venue outcomes, retries, manual
review, claims, recovery and reconciliation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import AccountKind, LedgerAccount, SystemRole, Transfer
from settlement import services, tasks
from settlement.models import Counter, Settlement, SettlementError, SettlementStep, State
from settlement.services.state import claim
from trading.models import AuditRecord

from .conftest import emit, set_faults

pytestmark = pytest.mark.django_db


def role_balance(role: str, asset: str) -> Decimal:
    total = Decimal(0)
    for account in LedgerAccount.objects.filter(
        kind__in=[AccountKind.SYSTEM, AccountKind.EXTERNAL], role=role, asset=asset
    ):
        total += account.credits_posted - account.debits_posted
    return total


def run_step(step, ids):
    """One step alone, here (step 3 too, whatever the venue queue)."""
    return services.settlements_run(ids=ids, from_step=step, to_step=step, through_venue=True)


def run_all_steps(ids):
    for step in (1, 2, 3, 4):
        ids = run_step(step, ids)
    return ids


def test_intake_is_idempotent_per_event_key(venue):
    message = emit()
    first = services.settlements_accept(events=[message, message])
    assert len(first) == 1
    assert services.settlements_accept(events=[message]) == []
    assert Settlement.objects.count() == 1


def test_an_opening_buy_settles_in_four_steps_and_leaves_no_exposure(venue):
    message = emit("open", usdt="1300")
    (sid,) = services.settlements_accept(events=[message])
    assert run_all_steps([sid]) == [sid]
    s = Settlement.objects.get(pk=sid)
    assert (s.state, s.step, s.attempts) == (State.SETTLED, 5, 0)
    assert s.client_order_id == f"stl-{sid}" and s.venue_order_id
    # The venue bought BTC with the premium (less rounding dust), at the index within the
    # slippage band.
    assert Decimal("1299.99") <= s.fill_cost <= Decimal("1300")
    assert abs(s.fill_price - Decimal("65000")) <= Decimal("65000") * Decimal("0.0005") + Decimal("0.01")
    assert abs(s.slippage_bps) <= Decimal("5.01")
    assert venue.placements(s.client_order_id) == 1
    # Every step wrote its legs with ids derived from (settlement, step).
    ids = set(Transfer.objects.filter(reference=s.ref).values_list("id", flat=True))
    assert {
        f"stl:{sid}:1:usdt",
        f"stl:{sid}:1:base",
        f"stl:{sid}:2:usdt",
        f"stl:{sid}:3:paid",
        f"stl:{sid}:3:got",
        f"stl:{sid}:4:base",
    } <= ids
    assert ids <= {*ids, f"stl:{sid}:4:dust", f"stl:{sid}:4:pnl"}
    # USDT went through treasury and funding to the venue; BTC came back to treasury. The
    # system wallet and the funding account end flat; the option book holds the hedge.
    for role in (SystemRole.TREASURY, SystemRole.VENUE_FUNDING):
        for asset in ("USDT", "BTC"):
            assert role_balance(role, asset) == 0, (role, asset)
    assert role_balance(SystemRole.OPTION_CLEARING, "BTC") == s.filled_qty
    assert abs(s.filled_qty - s.underlying_qty) <= s.underlying_qty * Decimal("0.0016")  # 5 bps slippage + 10 bps fee
    assert list(SettlementStep.objects.filter(settlement=s).values_list("step", "status")) == [
        (1, "done"),
        (2, "done"),
        (3, "done"),
        (4, "done"),
    ]


def test_a_close_sells_the_underlying_and_returns_usdt(venue):
    (sid,) = services.settlements_accept(events=[emit("close", usdt="650")])
    run_all_steps([sid])
    s = Settlement.objects.get(pk=sid)
    assert s.state == State.SETTLED
    assert s.filled_qty == s.underlying_qty == Decimal("0.01")
    for role in (SystemRole.TREASURY, SystemRole.VENUE_FUNDING):
        for asset in ("USDT", "BTC"):
            assert role_balance(role, asset) == 0, (role, asset)
    assert abs(s.fill_cost - Decimal("650")) <= Decimal("650") * Decimal("0.0016")


def test_a_transient_venue_error_is_retried_with_backoff(venue_settings, venue):
    (sid,) = services.settlements_accept(events=[emit()])
    run_step(1, [sid])
    run_step(2, [sid])
    set_faults(venue_settings, "rate_limit=1.0")
    assert run_step(3, [sid]) == []
    s = Settlement.objects.get(pk=sid)
    assert (s.state, s.step, s.attempts, s.last_error_code) == (State.RUNNING, 3, 1, "venue_rate_limited")
    assert s.next_attempt_at > timezone.now() - timedelta(seconds=1)
    assert s.claimed_until is None
    # Not due yet: nobody may run it before its backoff has passed.
    assert run_step(3, [sid]) == []
    set_faults(venue_settings, "")
    Settlement.objects.filter(pk=sid).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert run_step(3, [sid]) == [sid]
    assert run_step(4, [sid]) == [sid]
    assert Settlement.objects.get(pk=sid).state == State.SETTLED
    error = SettlementError.objects.get(settlement_id=sid)
    assert (error.step, error.attempt, error.code, error.transient) == (3, 1, "venue_rate_limited", True)
    assert Counter.objects.get(name="settlement_retries").value == 1


def test_an_ambiguous_outcome_is_resolved_by_lookup_never_by_a_second_order(venue_settings, venue):
    (sid,) = services.settlements_accept(events=[emit()])
    run_step(1, [sid])
    run_step(2, [sid])
    set_faults(venue_settings, "ambiguous=1.0")
    assert run_step(3, [sid]) == []
    s = Settlement.objects.get(pk=sid)
    assert s.last_error_code == "venue_timeout"
    assert venue.placements(s.client_order_id) == 1  # it did execute; the reply was lost
    set_faults(venue_settings, "")
    Settlement.objects.filter(pk=sid).update(next_attempt_at=None)
    assert run_step(3, [sid]) == [sid]
    assert venue.placements(s.client_order_id) == 1
    assert Settlement.objects.get(pk=sid).venue_order_id


def test_an_unseen_order_is_not_resent_while_the_first_request_may_be_in_flight(venue_settings, venue):
    (sid,) = services.settlements_accept(events=[emit()])
    run_step(1, [sid])
    run_step(2, [sid])
    set_faults(venue_settings, "timeout=1.0")  # refused before execution, but we cannot know
    run_step(3, [sid])
    set_faults(venue_settings, "")
    Settlement.objects.filter(pk=sid).update(next_attempt_at=None)
    assert run_step(3, [sid]) == []
    s = Settlement.objects.get(pk=sid)
    assert s.last_error_code == "venue_outcome_unknown"
    assert s.next_attempt_at > timezone.now()
    assert get_placements(venue, s) == 0
    # Once the grace has passed, the lookup's "never seen" is final and the order goes out.
    Settlement.objects.filter(pk=sid).update(next_attempt_at=None, venue_sent_at=timezone.now() - timedelta(seconds=60))
    assert run_step(3, [sid]) == [sid]
    assert get_placements(venue, s) == 1


def get_placements(venue, settlement):
    return venue.placements(services.client_order_id(settlement))


@pytest.mark.django_db(transaction=True)
def test_a_fatal_venue_error_goes_to_manual_review_and_staff_can_retry(venue_settings, venue, eager_celery, staff):
    (sid,) = services.settlements_accept(events=[emit()])
    run_step(1, [sid])
    run_step(2, [sid])
    set_faults(venue_settings, "reject=1.0")
    run_step(3, [sid])
    s = Settlement.objects.get(pk=sid)
    assert (s.state, s.last_error_code) == (State.MANUAL_REVIEW, "venue_rejected")
    assert AuditRecord.objects.filter(action="settlement.manual_review", target_id=str(sid)).exists()
    # Recovery leaves manual review alone.
    Settlement.objects.filter(pk=sid).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert services.settlements_stalled() == {}
    set_faults(venue_settings, "")
    services.settlement_retry(settlement_id=sid, actor=staff, note="venue fixed the symbol")
    s.refresh_from_db()
    assert s.state == State.SETTLED  # the eager resume ran steps 3 and 4
    assert AuditRecord.objects.filter(action="settlement.retry", target_id=str(sid)).exists()


def test_resolving_needs_a_note_and_is_audited(venue_settings, venue, staff):
    (sid,) = services.settlements_accept(events=[emit()])
    set_faults(venue_settings, "reject=1.0")
    run_all_steps([sid])
    with pytest.raises(Exception) as missing:
        services.settlement_resolve(settlement_id=sid, actor=staff, note="  ")
    assert getattr(missing.value, "code", "") == "validation_error"
    services.settlement_resolve(settlement_id=sid, actor=staff, note="swapped by hand on the venue")
    s = Settlement.objects.get(pk=sid)
    assert (s.state, s.resolution_note, s.resolved_by) == (State.RESOLVED, "swapped by hand on the venue", staff.email)
    assert AuditRecord.objects.filter(action="settlement.resolve", target_id=str(sid)).exists()
    with pytest.raises(Exception) as again:
        services.settlement_resolve(settlement_id=sid, actor=staff, note="again")
    assert getattr(again.value, "code", "") == "not_in_review"


def test_a_claimed_settlement_is_not_run_by_a_second_executor(venue):
    (sid,) = services.settlements_accept(events=[emit()])
    _token, batch = claim([sid], 1)
    assert [s.id for s in batch] == [sid]
    assert run_step(1, [sid]) == []  # someone else holds it
    # The holder dies: its claim expires and the step can be taken again.
    Settlement.objects.filter(pk=sid).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert run_step(1, [sid]) == [sid]
    assert Transfer.objects.filter(id__startswith=f"stl:{sid}:1:").count() == 2


def test_recovery_re_enqueues_idle_settlements_from_their_step(venue, eager_celery, django_capture_on_commit_callbacks):
    first = services.settlements_accept(events=[emit()])
    run_step(1, first)
    run_step(2, first)
    second = services.settlements_accept(events=[emit("close", usdt="650")])
    run_step(1, second)
    ids = first + second
    Settlement.objects.filter(pk__in=ids).update(updated_at=timezone.now() - timedelta(minutes=1))
    assert services.settlements_stalled() == {3: ids[:1], 2: ids[1:]}
    with django_capture_on_commit_callbacks(execute=True):  # the tasks go out as the sweep ends
        assert tasks.settlement_recover() == 2
    assert set(Settlement.objects.values_list("state", flat=True)) == {State.SETTLED}
    assert Counter.objects.get(name="settlement_recovered").value == 2


@pytest.mark.django_db(transaction=True)
def test_reconciliation_republishes_events_without_a_settlement(venue, eager_celery):
    from trading.models import OutboxEvent

    old, young = emit(), emit()
    OutboxEvent.objects.filter(pk=old["id"]).update(created_at=timezone.now() - timedelta(seconds=10))
    wait_for_the_snapshot_guard(young["id"])
    OutboxEvent.objects.filter(pk=young["id"]).update(created_at=timezone.now())  # however long that took
    assert tasks.outbox_reconcile() == 1
    assert Settlement.objects.get(ref=old["key"]).state == State.SETTLED
    assert not Settlement.objects.filter(ref=young["key"]).exists()
    assert Counter.objects.get(name="outbox_republished").value == 1
    # Nothing is republished twice once it has its settlement.
    assert tasks.outbox_reconcile() == 0


def wait_for_the_snapshot_guard(event_id: int, timeout: float = 30) -> None:
    """Outbox readers see an event once every transaction older than its own has ended,
    on the whole server: on a PostgreSQL shared with other test runs that takes a moment."""
    import time

    from trading.outbox import outbox_after

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.id == event_id for e in outbox_after(txid=0, event_id=0, limit=1000)):
            return
        time.sleep(0.05)
    raise AssertionError(f"event {event_id} still behind the snapshot guard after {timeout}s")


def test_events_of_other_topics_are_not_settled(venue):
    message = emit(topic="options.other")
    assert services.settlements_accept(events=[message]) == []


def test_a_close_at_a_zero_bid_settles_without_a_venue_order(venue):
    (sid,) = services.settlements_accept(events=[emit("close", usdt="0")])
    assert run_all_steps([sid]) == [sid]
    s = Settlement.objects.get(pk=sid)
    assert (s.state, s.filled_qty, s.fill_cost) == (State.SETTLED, 0, 0)
    assert venue.total_placed() == 0
    assert not Transfer.objects.filter(reference=s.ref).exists()


def test_a_step_also_takes_other_settlements_waiting_at_it(venue):
    ids = services.settlements_accept(events=[emit(), emit(), emit("close", usdt="650")])
    # One message for the first settlement: the step takes all three, which share the batch.
    assert run_step(1, ids[:1]) == ids
    assert run_step(1, ids[1:]) == []  # their own messages: nothing left
    assert run_step(2, ids[2:]) == ids


def test_the_intake_takes_a_batch_through_every_step_in_two_commits(venue):
    messages = [
        emit(),
        emit("close", usdt="650"),
        emit("exercise", usdt="40", underlying="ETH", topic="options.exercise"),
    ]
    # step 3 in the intake's own task (no venue queue); a key twice: inserted once
    new, settled = services.settlements_take_in(events=messages + messages[:1], through_venue=True)
    assert len(new) == 3 and settled == new
    for s in Settlement.objects.filter(pk__in=new):
        assert (s.state, s.step, s.claim, s.client_order_id) == (State.SETTLED, 5, "", f"stl-{s.id}")
        assert venue.placements(s.client_order_id) == 1
        assert list(SettlementStep.objects.filter(settlement=s).values_list("step", "status")) == [
            (1, "done"),
            (2, "done"),
            (3, "done"),
            (4, "done"),
        ]
        legs = set(Transfer.objects.filter(reference=s.ref).values_list("id", flat=True))
        assert {f"stl:{s.id}:1:usdt", f"stl:{s.id}:1:base", f"stl:{s.id}:3:paid", f"stl:{s.id}:3:got"} <= legs
    for role in (SystemRole.TREASURY, SystemRole.VENUE_FUNDING):
        for asset in ("USDT", "BTC", "ETH"):
            assert role_balance(role, asset) == 0, (role, asset)
    # A duplicate delivery inserts nothing and runs nothing.
    assert services.settlements_take_in(events=messages) == ([], [])


def test_the_venue_executor_takes_whatever_waits_at_step_3_in_claims_it_can_send(venue):
    messages = [emit(), emit("close", usdt="650"), emit()]
    new, waiting = services.settlements_take_in(events=messages, through_venue=False)
    assert waiting == new
    assert set(Settlement.objects.values_list("step", "claim", "state")) == {(3, "", State.RUNNING)}
    # One venue call at a time in this process (the suite's setting): three claims of one,
    # oldest first, all taken by the task of the first settlement alone.
    settled, more = services.settlements_venue_run(ids=new[:1])
    assert (sorted(settled), more) == (new, False)
    assert SettlementStep.objects.filter(step=3).values("started_at").distinct().count() == 3
    for s in Settlement.objects.all():
        assert (s.state, s.step) == (State.SETTLED, 5)
        assert venue.placements(s.client_order_id) == 1
    assert services.settlements_venue_run(ids=new) == ([], False)


def test_a_redelivered_intake_message_finishes_what_its_worker_left(
    venue, eager_celery, django_capture_on_commit_callbacks
):
    messages = [emit(), emit("close", usdt="650")]
    first, _second = services.settlements_accept(events=messages)
    run_step(1, [first])
    run_step(2, [first])  # the worker died before step 3
    with django_capture_on_commit_callbacks(execute=True):  # step 3 goes to the venue queue
        assert tasks.settlement_intake(messages) == 0
    assert set(Settlement.objects.values_list("state", flat=True)) == {State.SETTLED}
    assert venue.total_placed() == 2


def test_a_small_batch_at_a_venue_known_to_be_fast_goes_out_from_the_intake_itself(venue, settings):
    settings.SETTLEMENT_VENUE_QUEUE = "test.venue"
    settings.SETTLEMENT_VENUE_INLINE_MS = 25
    settings.SETTLEMENT_VENUE_INLINE_BATCH = 2
    # The suite's simulated venue answers at once (latency_ms=0): the intake claims the batch
    # in its own transaction and settles it, the venue queue never sees it.
    new, settled = services.settlements_take_in(events=[emit(), emit("close", usdt="650")])
    assert len(new) == 2 and settled == new
    for s in Settlement.objects.filter(pk__in=new):
        assert (s.state, s.step) == (State.SETTLED, 5)
        assert venue.placements(s.client_order_id) == 1
        three, four = (SettlementStep.objects.get(settlement=s, step=n) for n in (3, 4))
        # Step 3 ends when the venue answered; step 4 (booked in the same commit) starts there.
        assert three.started_at <= three.finished_at == four.started_at <= four.finished_at == s.settled_at
    # A larger batch (a backlog) waits at step 3 for the venue queue's executors.
    new, waiting = services.settlements_take_in(events=[emit(), emit(), emit()])
    assert waiting == new
    assert set(Settlement.objects.filter(pk__in=new).values_list("step", "claim")) == {(3, "")}
    # So does a small one at a venue slower than the limit.
    set_faults(settings, "latency_ms=40,slippage_bps=5,fee_bps=10")
    new, waiting = services.settlements_take_in(events=[emit()])
    assert waiting == new
    assert Settlement.objects.get(pk=new[0]).step == 3
    # And every batch with the limit at 0.
    set_faults(settings, "latency_ms=0,slippage_bps=5,fee_bps=10")
    settings.SETTLEMENT_VENUE_INLINE_MS = 0
    new, waiting = services.settlements_take_in(events=[emit()])
    assert Settlement.objects.get(pk=new[0]).step == 3


def test_each_settlement_records_when_the_relay_read_and_sent_it_and_the_intake_started(venue):
    read, sent = time.time() - 0.020, time.time() - 0.010
    messages = [{**emit(), "relay_seen_at": read, "relay_sent_at": sent}, emit()]
    before = timezone.now()
    assert tasks.settlement_intake(messages) == 2
    traced, plain = Settlement.objects.order_by("id")
    assert traced.relay_seen_at == datetime.fromtimestamp(read, tz=UTC)
    assert traced.relay_sent_at == datetime.fromtimestamp(sent, tz=UTC)
    # A message that came another way (the reconciliation) has no relay times.
    assert plain.relay_seen_at is None and plain.relay_sent_at is None
    for s in (traced, plain):
        assert before <= s.intake_started_at <= s.accepted_at
