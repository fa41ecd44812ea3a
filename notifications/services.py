"""Writing notifications and sending their deliveries.

``notify`` (and ``notify_many`` for a batch, as the engine runner writes one per commit) is
the one way in. It writes the in-app row in the caller's transaction, keyed by the event's
``dedupe_key``: a row for the same user and key already there means the event was told
before, and nothing is written or sent again. Kinds with a coalescing window (partial fills)
key the row by the window too, so the fills of one order within it update one message.

The email and webhook deliveries the user's preferences ask for are rows of their own,
written with the notification; after the commit a task is queued per delivery (and the
message is published on the user's stream). Sending never runs in the producer's
transaction and never makes it fail: a broker that is down only delays the delivery to the
sweep, which picks up every delivery that is due.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from trading.dependencies import BROKER, dependency, unavailable
from trading.errors import NotFound, ValidationFailed
from trading.pgarrays import unnest_arrays

from . import kinds
from .models import Delivery, DeliveryAttempt, DeliveryStatus, Notification, NotificationPreference, WebhookEndpoint

logger = logging.getLogger(__name__)

DELIVER_TASK = "notifications.deliver"
_CHUNK = 5000


def max_attempts() -> int:
    return settings.NOTIFICATIONS_MAX_ATTEMPTS


def claim_seconds() -> float:
    """How long a delivery being sent is not picked up again (a crashed sender's is, after)."""
    return settings.NOTIFICATIONS_CLAIM_SECONDS


def sweep_grace() -> float:
    """Seconds past due before the stack's sweep queues a delivery again."""
    return settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS


def retry_delay(attempt: int) -> float:
    """Seconds before retry number ``attempt`` + 1: doubling from the base, capped."""
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS
    cap = settings.NOTIFICATIONS_RETRY_MAX_SECONDS
    return min(cap, base * 2 ** max(0, attempt - 1))


def coalesce_window(kind: str) -> int:
    """Seconds of the kind's coalescing window, 0 if its events are told one by one."""
    if not kinds.KINDS[kinds.preference_kind(kind)].coalesce:
        return 0
    return max(1, int(settings.NOTIFICATIONS_COALESCE_SECONDS))


def user_topic(user_id: int) -> str:
    """The user's own stream (``/ws/user/``), as its consumer subscribes to it."""
    return f"user:{user_id}"


@dataclass
class Message:
    """One event to tell one user."""

    user_id: int
    kind: str
    title: str
    body: str
    dedupe_key: str
    data: dict = field(default_factory=dict)
    critical: bool = False


def notify(*, user, kind: str, title: str, body: str, dedupe_key: str, data=None, critical=False) -> Notification:
    """Tell ``user`` about one event, once per ``dedupe_key`` (see the module's docstring).
    Returns the notification, the earlier one when the event was told before. ``critical``
    messages go to every channel whatever the preferences."""
    message = Message(
        user_id=user.pk,
        kind=kind,
        title=title,
        body=body,
        dedupe_key=dedupe_key,
        data=data or {},
        critical=critical,
    )
    return _notify_one(message, strict=True)


def _notify_one(message: Message, *, strict: bool) -> Notification:
    now = timezone.now()
    created = notify_many([message], now=now, strict=strict, _new=True)
    if created:
        # Written just now: what it holds is known, no need to read it back.
        pk, in_app = created[0]
        return Notification(
            pk=pk,
            user_id=message.user_id,
            kind=message.kind,
            title=message.title[:200],
            body=message.body,
            data=message.data,
            dedupe_key=_stored_key(message, now),
            critical=message.critical,
            in_app=in_app,
            created_at=now,
            updated_at=now,
            read_at=None,
        )
    return Notification.objects.get(user_id=message.user_id, dedupe_key=_stored_key(message, now))


def notify_many(messages: list[Message], *, now=None, strict: bool = True, _new: bool = False) -> list:
    """Write a batch of messages in the current transaction; the ids written or updated (a
    message already told adds none). ``strict``: refuse kinds that are not listed.
    (``_new``: answer ``[(id, in_app)]`` of the rows inserted instead.)"""
    if not messages:
        return []
    for message in messages:
        if strict and message.kind not in kinds.KINDS and message.kind not in kinds.EVENT_KINDS:
            raise ValueError(f"unknown notification kind {message.kind!r}")
        if not message.dedupe_key:
            raise ValueError("a notification needs a dedupe key")
    now = now or timezone.now()
    user_ids = {m.user_id for m in messages}
    overrides: dict[int, dict] = {}
    for user_id, kind, channel, enabled in NotificationPreference.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "kind", "channel", "enabled"
    ):
        overrides.setdefault(user_id, {})[(kind, channel)] = enabled
    by_key: dict[tuple[int, str], tuple] = {}
    for message in messages:
        channels = kinds.resolve(message.kind, overrides.get(message.user_id, {}))
        if message.critical:
            channels = dict.fromkeys(kinds.CHANNELS, True)
        key = _stored_key(message, now)
        # One event twice in one batch is one message: the first, or for a coalescing kind the latest.
        if (message.user_id, key) not in by_key or coalesce_window(message.kind):
            by_key[(message.user_id, key)] = (message, key, channels)
    rows = list(by_key.values())

    written: list[int] = []
    created: list[tuple[int, Message, dict]] = []
    published: list[tuple[int, int, dict]] = []
    # No savepoint: these rows stand or fall with the caller's transaction (one round trip less each way).
    with transaction.atomic(savepoint=False):
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            inserted = _insert(chunk, now)
            for message, key, channels in chunk:
                got = inserted.get((message.user_id, key))
                if got is not None:
                    created.append((got, message, channels))
                elif coalesce_window(message.kind):
                    # Another fill of the same order in the same window: the one message says the latest.
                    same = Notification.objects.filter(user_id=message.user_id, dedupe_key=key)
                    same.update(title=message.title[:200], body=message.body, data=message.data, updated_at=now)
                    got = same.values_list("id", flat=True).first()
                else:
                    continue
                if got:
                    written.append(got)
                    if channels[kinds.IN_APP]:
                        published.append((got, message.user_id, _event(got, message, now)))
        deliveries = _deliveries(created, now)
    transaction.on_commit(lambda: _after_commit(published, deliveries))
    if _new:
        return [(pk, channels[kinds.IN_APP]) for pk, _, channels in created]
    return written


def _stored_key(message: Message, now) -> str:
    window = coalesce_window(message.kind)
    if not window:
        return message.dedupe_key[:200]
    return f"{message.dedupe_key}:w{int(now.timestamp()) // window}"[:200]


_COLUMNS = (
    ("user_id", "bigint"),
    ("kind", "text"),
    ("title", "text"),
    ("body", "text"),
    ("data", "jsonb"),
    ("dedupe_key", "text"),
    ("critical", "boolean"),
    ("in_app", "boolean"),
)


def _insert(chunk, now) -> dict[tuple[int, str], int]:
    """INSERT ... ON CONFLICT DO NOTHING: {(user_id, key): id} of the rows that are new."""
    table = Notification._meta.db_table
    rows = [
        (
            message.user_id,
            message.kind,
            message.title[:200],
            message.body,
            json.dumps(message.data, default=str, separators=(",", ":")),
            key,
            message.critical,
            bool(channels[kinds.IN_APP]),
        )
        for message, key, channels in chunk
    ]
    names = ", ".join(name for name, _ in _COLUMNS)
    returning = " ON CONFLICT (user_id, dedupe_key) DO NOTHING RETURNING id, user_id, dedupe_key"
    if connection.vendor == "postgresql":
        # One array per column (a batch of the engine's is thousands of rows): binding them
        # costs a fraction of binding every value.
        arrays, params = unnest_arrays([list(column) for column in zip(*rows)], [kind for _, kind in _COLUMNS])
        sql = (
            f"INSERT INTO {table} ({names}, created_at, updated_at, read_at)"
            f" SELECT *, %s, %s, NULL FROM unnest({arrays}){returning}"
        )
        params = [now, now, *params]  # in the order of their placeholders
    else:
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL)"] * len(rows))
        sql = f"INSERT INTO {table} ({names}, created_at, updated_at, read_at) VALUES {values}{returning}"
        params = [value for row in rows for value in (*row, now, now)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(user_id, key): pk for pk, user_id, key in cursor.fetchall()}


def _deliveries(created: list[tuple[int, Message, dict]], now) -> list[tuple[int, float]]:
    """The email and webhook deliveries of the new notifications: [(delivery id, wait)]."""
    wanted = [(pk, m, ch) for pk, m, ch in created if ch[kinds.EMAIL] or ch[kinds.WEBHOOK]]
    if not wanted:
        return []
    from accounts.models import User

    # One read for both: who has an address, who has a webhook.
    emails, hooks = set(), set()
    for pk, email, hook in User.objects.filter(pk__in={m.user_id for _, m, _ in wanted}).values_list(
        "pk", "email", "webhook_endpoint__id"
    ):
        if email:
            emails.add(pk)
        if hook is not None:
            hooks.add(pk)
    rows = []
    for pk, message, channels in wanted:
        window = coalesce_window(message.kind)
        # A coalesced message is sent when its window has closed, saying what it then says.
        due = now + timedelta(seconds=window - now.timestamp() % window) if window else now
        if channels[kinds.EMAIL] and message.user_id in emails:
            rows.append(Delivery(notification_id=pk, channel=kinds.EMAIL, due_at=due))
        if channels[kinds.WEBHOOK] and message.user_id in hooks:
            rows.append(Delivery(notification_id=pk, channel=kinds.WEBHOOK, due_at=due))
    Delivery.objects.bulk_create(rows)
    return [(row.pk, max(0.0, (row.due_at - now).total_seconds())) for row in rows]


def _event(pk: int, message: Message, now) -> dict:
    from trading.formatting import utc_string

    # Nested: on this stream a top-level "id" is an order's.
    return {
        "type": "notification",
        "notification": {
            "id": pk,
            "kind": message.kind,
            "title": message.title[:200],
            "body": message.body,
            "data": message.data,
            "created_at": utc_string(now),
            "read_at": None,
        },
    }


def _after_commit(published, deliveries) -> None:
    """Publish on the users' streams and queue the deliveries. Neither may fail the
    producer, whose transaction has committed: what is not queued now the sweep sends."""
    if published:
        try:
            from trading.realtime import publish_many

            publish_many([(user_topic(user_id), payload) for _, user_id, payload in published])
        except Exception:
            logger.exception("notifications: publishing on the user streams failed")
    if deliveries and not settings.EMBEDDED:
        # The embedded mode runs tasks in the caller: its sweep (every few seconds, on the
        # embedded beat) sends instead, so a slow mail server never holds up a request.
        enqueue_deliveries(deliveries)


def enqueue_deliveries(deliveries: list[tuple[int, float]]) -> None:
    """A task per delivery. The first one the broker refuses ends the loop: each refusal
    costs the publisher's connection retry (about half a second), so a broker that is down
    would hold the producer (the engine runner, the alert watcher, the relay's take-in) for
    that long per delivery; the deliveries not queued stay due in the database and the
    sweep queues them. The refusal marks the broker down for the process
    (``trading.dependencies``): until it is due for another try, nothing is queued here."""
    from trading.celery import app

    broker = dependency(BROKER)
    if not deliveries or not broker.may_try():
        return
    for n, (delivery_id, wait) in enumerate(deliveries):
        try:
            # By name (the tasks module imports this one; apps.ready registers it).
            app.tasks[DELIVER_TASK].apply_async(args=[delivery_id], countdown=wait or None)
        except Exception as exc:
            if unavailable(exc) == BROKER:
                broker.failed(exc)
            logger.warning(
                "notifications: could not queue delivery %s (%d not queued); the sweep will send them",
                delivery_id,
                len(deliveries) - n,
            )
            return
    broker.ok()


# --- sending -----------------------------------------------------------------------------


def delivery_attempt(*, delivery_id: int) -> bool | None:
    """Try one delivery that is due: True sent, False failed (retried later or given up),
    None not due or not pending (sent already, or another worker has it)."""
    from . import delivery as channels

    now = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, due_at__lte=now).update(
        due_at=now + timedelta(seconds=claim_seconds()), attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("notification__user").get(pk=delivery_id)
    started = time.monotonic()
    try:
        detail = channels.send(delivery)
        ok = True
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:2000]
        ok = False
    elapsed = int((time.monotonic() - started) * 1000)
    wait = None
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery, number=delivery.attempts, ok=ok, detail=detail, duration_ms=elapsed
        )
        done = timezone.now()
        if ok:
            Delivery.objects.filter(pk=delivery_id).update(
                status=DeliveryStatus.SENT, sent_at=done, last_error="", due_at=done
            )
        elif delivery.attempts >= max_attempts():
            Delivery.objects.filter(pk=delivery_id).update(status=DeliveryStatus.FAILED, last_error=detail)
        else:
            wait = retry_delay(delivery.attempts)
            Delivery.objects.filter(pk=delivery_id).update(due_at=done + timedelta(seconds=wait), last_error=detail)
    if wait is not None and not settings.EMBEDDED:
        enqueue_deliveries([(delivery_id, wait)])
    return ok


def deliveries_due(*, limit: int = 500, grace: float | None = None) -> int:
    """Send what is due and was not sent (its message lost, the broker down, a retry's
    backoff over, a sender that crashed): the safety net run every few seconds.

    In the embedded mode it is the sender and sends here. In the stack it queues a task per
    delivery, and only for those due more than ``grace`` seconds ago
    (``NOTIFICATIONS_SWEEP_GRACE_SECONDS``): a delivery whose own task is still on its way is
    left to it, so a backlog is not queued again on every sweep (a second task for one
    delivery finds it claimed or sent)."""
    inline = settings.EMBEDDED
    if grace is None:
        grace = 0.0 if inline else sweep_grace()
    ids = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, due_at__lte=timezone.now() - timedelta(seconds=grace))
        .order_by("due_at")
        .values_list("id", flat=True)[:limit]
    )
    if inline:
        for delivery_id in ids:
            delivery_attempt(delivery_id=delivery_id)
    else:
        enqueue_deliveries([(delivery_id, 0.0) for delivery_id in ids])
    return len(ids)


# --- in-app and preferences ----------------------------------------------------------------


def notification_create(*, user, kind: str, title: str, body: str = "", dedupe_key: str = "") -> Notification:
    """For callers without an event key of their own: every call is a new message. Joins the
    caller's transaction if there is one: the message exists only if the event does."""
    import uuid

    message = Message(
        user_id=user.pk, kind=kind, title=title, body=body, dedupe_key=dedupe_key or f"{kind}:{uuid.uuid4().hex}"
    )
    return _notify_one(message, strict=False)


def notification_mark_read(*, user, notification_id: int) -> Notification:
    with transaction.atomic(durable=True):
        notification = (
            Notification.objects.select_for_update().filter(user=user, pk=notification_id, in_app=True).first()
        )
        if notification is None:
            raise NotFound("Notification not found.")
        if notification.read_at is None:
            notification.read_at = timezone.now()
            notification.save(update_fields=["read_at"])
    return notification


def notification_mark_all_read(*, user) -> int:
    with transaction.atomic(durable=True):
        return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


def preferences_set(*, user, events: dict) -> None:
    """Store the user's choices for the kinds and channels named (the others stay as they
    are). Unknown kinds or channels, values that are not booleans, and switching off a kind
    that cannot be (security, risk_alert) are refused whole, nothing stored."""
    problems = {}
    if not isinstance(events, dict):
        raise ValidationFailed("events must be an object of kinds.", fields={"events": "expected an object"})
    for kind, channels in events.items():
        if kind not in kinds.KINDS:
            problems[f"events.{kind}"] = "unknown kind"
            continue
        if not isinstance(channels, dict):
            problems[f"events.{kind}"] = "expected an object of channels"
            continue
        for channel, enabled in channels.items():
            where = f"events.{kind}.{channel}"
            if channel not in kinds.CHANNELS:
                problems[where] = f"unknown channel (one of {', '.join(kinds.CHANNELS)})"
            elif not isinstance(enabled, bool):
                problems[where] = "expected true or false"
            elif not enabled and kinds.locked(kind):
                problems[where] = f"{kind} notifications cannot be switched off"
    if problems:
        raise ValidationFailed("Some preferences cannot be set.", fields=problems)
    with transaction.atomic():
        for kind, channels in events.items():
            for channel, enabled in channels.items():
                NotificationPreference.objects.update_or_create(
                    user=user, kind=kind, channel=channel, defaults={"enabled": enabled}
                )


def webhook_set(*, user, url: str | None) -> WebhookEndpoint | None:
    """Point the user's webhook at ``url`` (a new signing secret the first time), or remove it."""
    import secrets

    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            message = "Enter a valid http(s) URL."
            raise ValidationFailed(message, fields={"webhook_url": message}) from None
        if len(url) > 500:
            raise ValidationFailed("The URL is too long.", fields={"webhook_url": "At most 500 characters."})
    with transaction.atomic():
        if not url:
            WebhookEndpoint.objects.filter(user=user).delete()
            return None
        endpoint, created = WebhookEndpoint.objects.get_or_create(
            user=user, defaults={"url": url, "secret": secrets.token_hex(32)}
        )
        if not created and endpoint.url != url:
            endpoint.url = url
            endpoint.save(update_fields=["url", "updated_at"])
        return endpoint


def webhook_rotate_secret(*, user) -> WebhookEndpoint:
    import secrets

    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(user=user).first()
        if endpoint is None:
            raise ValidationFailed(
                "There is no webhook to make a new secret for: set webhook_url first.",
                fields={"rotate_webhook_secret": ["No webhook is set."]},
            )
        endpoint.secret = secrets.token_hex(32)
        endpoint.save(update_fields=["secret", "updated_at"])
        return endpoint


def preferences_update(*, user, events: dict, webhook_url=..., rotate_secret: bool = False) -> None:
    """The preferences page's and PUT /notifications/preferences' one write: the choices,
    the webhook URL (``...``: unchanged; empty: removed) and a new secret, all or nothing."""
    with transaction.atomic(durable=True):
        preferences_set(user=user, events=events)
        if webhook_url is not ...:
            webhook_set(user=user, url=webhook_url)
        if rotate_secret:
            webhook_rotate_secret(user=user)
