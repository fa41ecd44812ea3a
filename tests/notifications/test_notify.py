"""notify(): one message per event and user, one delivery per enabled channel, redelivery
adds nothing, partial fills coalesce, critical messages skip preferences."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications import services
from notifications.models import Delivery, DeliveryAttempt, DeliveryStatus, Notification, NotificationPreference
from notifications.services import Message, notify, notify_many
from trading.dependencies import BROKER, dependency

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def deposit(user, key="deposit:1", **kwargs):
    return notify(
        user=user,
        kind="deposit_credited",
        title="Deposit of 1.00 USDT credited",
        body="1.00 USDT is now in your available balance.",
        dedupe_key=key,
        **kwargs,
    )


def channels_of(user):
    return sorted(Delivery.objects.filter(notification__user=user).values_list("channel", flat=True))


def test_one_message_and_one_delivery_per_enabled_channel(user, eager_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = deposit(user, data={"asset": "USDT"})

    assert Notification.objects.filter(user=user).count() == 1
    assert first.kind == "deposit_credited" and first.in_app and first.data == {"asset": "USDT"}
    # Email is on by default for deposits; no webhook is set, so none is written.
    assert channels_of(user) == ["email"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [user.email]
    assert "Deposit of 1.00 USDT credited" in mail.outbox[0].subject
    delivery = Delivery.objects.get(notification=first)
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 1
    assert list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "ok")) == [(1, True)]


def test_the_same_event_twice_is_told_once(user, eager_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = deposit(user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = deposit(user, data={"changed": True})

    assert again.pk == first.pk
    assert again.data == {}  # the first telling stands
    assert Notification.objects.filter(user=user).count() == 1
    assert channels_of(user) == ["email"]
    assert len(mail.outbox) == 1
    assert Delivery.objects.get().attempts == 1
    # Nothing is published or queued for a repeat.
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 1


def test_the_same_key_for_another_user_is_another_message(user, other_user):
    deposit(user)
    deposit(other_user)

    assert Notification.objects.filter(dedupe_key="deposit:1").count() == 2


def test_switched_off_channels_get_nothing(user, eager_tasks, django_capture_on_commit_callbacks):
    services.preferences_set(user=user, events={"deposit_credited": {"in_app": False, "email": False}})

    with django_capture_on_commit_callbacks(execute=True):
        message = deposit(user)

    assert channels_of(user) == []
    assert mail.outbox == []
    # The event is recorded (a redelivery stays a no-op) but not listed in the app.
    assert message.in_app is False
    from notifications.selectors import notification_list, notification_unread_count

    assert list(notification_list(user=user)) == []
    assert notification_unread_count(user=user) == 0


def test_email_for_a_kind_that_is_off_by_default(user, eager_tasks, django_capture_on_commit_callbacks):
    def fill(n):
        return notify(
            user=user, kind="order_filled", title=f"Buy order {n} filled", body="Filled.", dedupe_key=f"spot:{n}:filled"
        )

    with django_capture_on_commit_callbacks(execute=True):
        fill(1)
    assert channels_of(user) == []

    services.preferences_set(user=user, events={"order_filled": {"email": True}})
    with django_capture_on_commit_callbacks(execute=True):
        fill(2)
    assert channels_of(user) == ["email"]
    assert [m.subject.endswith("Buy order 2 filled") for m in mail.outbox] == [True]


def test_critical_messages_skip_preferences(user, eager_tasks, django_capture_on_commit_callbacks):
    services.preferences_set(user=user, events={"order_cancelled": {"in_app": False, "email": False}})

    with django_capture_on_commit_callbacks(execute=True):
        message = notify(
            user=user,
            kind="order_cancelled",
            title="All your orders were cancelled",
            body="Trading on your account is halted.",
            dedupe_key="halt:1",
            critical=True,
        )

    assert message.in_app and message.critical
    assert channels_of(user) == ["email"]
    assert len(mail.outbox) == 1


def test_security_and_risk_ignore_stored_off_choices(user, eager_tasks, django_capture_on_commit_callbacks):
    # A row written around the API (the API refuses it) still cannot silence these kinds.
    NotificationPreference.objects.create(user=user, kind="security", channel="email", enabled=False)
    NotificationPreference.objects.create(user=user, kind="risk_alert", channel="in_app", enabled=False)

    with django_capture_on_commit_callbacks(execute=True):
        password = notify(
            user=user, kind="password_changed", title="Your password was changed", body="", dedupe_key="pw:1"
        )
        risk = notify(user=user, kind="risk_alert", title="You have used 80%", body="", dedupe_key="risk:1")

    assert password.in_app and risk.in_app
    assert channels_of(user) == ["email", "email"]
    assert len(mail.outbox) == 2


def test_partial_fills_of_one_order_coalesce_within_the_window(user, eager_tasks, django_capture_on_commit_callbacks):
    services.preferences_set(user=user, events={"order_partially_filled": {"email": True}})
    # A window a minute ahead: its end (when its email is due) is surely still to come.
    window_start = timezone.now().replace(microsecond=0) + timedelta(seconds=60)
    window_start -= timedelta(seconds=window_start.second % 2)

    def partial(filled, at, order_id=7):
        return Message(
            user_id=user.pk,
            kind="order_partially_filled",
            title=f"Buy BTC-USDT order {order_id} partially filled",
            body=f"Filled {filled} of 1.000000 BTC so far.",
            dedupe_key=f"spot:{order_id}:partial",
            data={"filled_quantity": filled},
        )

    with django_capture_on_commit_callbacks(execute=True):
        notify_many([partial("0.100000", 0)], now=window_start)
        notify_many([partial("0.300000", 0), partial("0.5", 0, order_id=8)], now=window_start + timedelta(seconds=1))

    rows = Notification.objects.filter(user=user, kind="order_partially_filled").order_by("id")
    assert rows.count() == 2  # order 7 once, order 8 once
    seven = rows[0]
    assert seven.body == "Filled 0.300000 of 1.000000 BTC so far."
    assert seven.data == {"filled_quantity": "0.300000"}
    # One email per order and window, sent when the window has closed (with what it says then).
    assert Delivery.objects.filter(notification=seven).count() == 1
    assert mail.outbox == []
    Delivery.objects.update(due_at=timezone.now())
    assert services.deliveries_due(grace=0) == 2
    assert sorted(m.body.split("\n")[0] for m in mail.outbox) == [
        "Filled 0.300000 of 1.000000 BTC so far.",
        "Filled 0.5 of 1.000000 BTC so far.",
    ]

    # The next window is a new message.
    with django_capture_on_commit_callbacks(execute=True):
        notify_many([partial("0.400000", 0)], now=window_start + timedelta(seconds=2))
    assert Notification.objects.filter(user=user, kind="order_partially_filled").count() == 3


def test_unknown_kinds_and_missing_keys_are_refused(user):
    with pytest.raises(ValueError):
        notify(user=user, kind="order_filed", title="x", body="", dedupe_key="k")
    with pytest.raises(ValueError):
        notify(user=user, kind="order_filled", title="x", body="", dedupe_key="")
    assert not Notification.objects.exists()


def test_notify_joins_the_callers_transaction(user):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        deposit(user)
        raise RuntimeError("the event did not happen")

    assert not Notification.objects.exists()
    assert not Delivery.objects.exists()


def test_notification_create_still_works_for_older_callers(user):
    a = services.notification_create(user=user, kind="test", title="one")
    b = services.notification_create(user=user, kind="test", title="two")

    assert a.pk != b.pk and a.dedupe_key != b.dedupe_key
    assert a.kind == "test" and a.in_app


def test_the_sweep_requeues_only_what_its_own_task_should_have_sent_by_now(
    user, eager_tasks, django_capture_on_commit_callbacks
):
    from notifications.models import DeliveryStatus as Status

    message = deposit(user)  # no commit here: its task was never queued, as if the broker lost it
    delivery = Delivery.objects.get(notification=message)
    Delivery.objects.filter(pk=delivery.pk).update(due_at=timezone.now() - timedelta(seconds=5))

    assert services.deliveries_due() == 0  # its own task may still be on its way
    assert mail.outbox == []

    Delivery.objects.filter(pk=delivery.pk).update(
        due_at=timezone.now() - timedelta(seconds=services.sweep_grace() + 1)
    )
    assert services.deliveries_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT and len(mail.outbox) == 1
    assert services.deliveries_due() == 0  # sent: never again


def test_one_event_twice_in_one_batch_is_one_message(user, eager_tasks, django_capture_on_commit_callbacks):
    twice = [
        Message(user_id=user.pk, kind="deposit_credited", title=f"Deposit {n}", body="", dedupe_key="deposit:9")
        for n in (1, 2)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        written = notify_many(twice)

    (message,) = Notification.objects.filter(user=user)
    assert written == [message.pk] and message.title == "Deposit 1"
    assert channels_of(user) == ["email"] and len(mail.outbox) == 1


def test_text_and_data_are_stored_exactly(user):
    title = 'He said "sell" \\ then {left}, NULL'
    data = {"note": 'a "quoted" \\ value, {x}', "n": [1, None], "ü": "€"}

    notify_many(
        [Message(user_id=user.pk, kind="system", title=title, body="line 1\nline 2", dedupe_key="odd:1", data=data)]
    )

    stored = Notification.objects.get(user=user, dedupe_key="odd:1")
    assert (stored.title, stored.body, stored.data) == (title, "line 1\nline 2", data)


@pytest.fixture
def broker_down():
    """The Celery broker at a port nothing listens on (a Redis that is down), for this test."""
    import socket

    from trading.celery import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    saved = app.conf.broker_url, app._pool, app.amqp._producer_pool
    app.conf.broker_url = f"redis://127.0.0.1:{port}/0"
    app._pool = app.amqp._producer_pool = None
    yield
    down = app._pool
    app.conf.broker_url, app._pool, app.amqp._producer_pool = saved
    if down is not None:
        down.force_close_all()
    dependency(BROKER).ok()  # this process's view of the broker: back for the next tests


def test_a_broker_that_is_down_never_holds_up_the_producer(settings, broker_down, django_capture_on_commit_callbacks):
    """Twenty emails of one commit with the broker down: the producer's commit returns after
    one refused publish, not one per delivery (each costs the publisher's retry); every
    delivery stays due and the sweep sends it once the broker is back."""
    import time

    from tests.factories import UserFactory

    settings.EMBEDDED = False  # the stack: deliveries are queued as tasks after the commit
    users = [UserFactory() for _ in range(20)]
    messages = [
        Message(user_id=u.pk, kind="deposit_credited", title="Deposit credited", body="", dedupe_key=f"deposit:{n}")
        for n, u in enumerate(users)
    ]
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        notify_many(messages)
    took = time.monotonic() - started
    assert took < 4, f"the producer waited {took:.1f} s for a broker that is down"  # was about 0.6 s a delivery
    pending = Delivery.objects.filter(notification__user__in=users, status=DeliveryStatus.PENDING)
    assert pending.count() == 20
    # The refusal marked the broker down for the process: until its next try is due (with
    # backoff), producers do not even try.
    assert dependency(BROKER).down

    settings.EMBEDDED = True  # the sweep sends in-line: nothing was lost
    assert services.deliveries_due(grace=0) == 20
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users)
