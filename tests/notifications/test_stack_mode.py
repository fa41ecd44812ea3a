"""Notifications and price alerts in stack mode, every process real, as the Procfile runs
them: daphne, a Celery worker and beat (the deliveries' sweep), the BTC-USDT engine runner
and ``run_alerts``, on the test database and a private Redis (``BackOffice``). Email goes
through Django's SMTP backend to an aiosmtpd server in this test; webhooks reach a local
HTTP server here, which checks their signature.

* A trader with email on for ``order_filled`` and a webhook URL, all set over HTTP, trades
  over HTTP: one in-app notification (read from the API), one email (read from the SMTP
  server), one signed webhook.
* A price alert created over HTTP fires on the trade that crosses it: told in-app, by email
  and by webhook, once.
* The SMTP server holds every session while three more fills are told: the worker is killed
  with ``kill -9`` while two emails are being sent and the rest wait in the broker; a new
  worker sends every email once (the killed sends' claims run out and the sweep queues them).
* ``run_alerts`` is killed with ``kill -9``, an alert is created meanwhile, and the restarted
  process fires it on the next crossing trade.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from rest_framework_simplejwt.tokens import AccessToken

from notifications.models import Delivery, DeliveryAttempt, DeliveryStatus
from tests.notifications.test_channels import Mailbox, Receiver, verify
from tests.orders.spot.conftest import markets  # noqa: F401  (fixture)
from tests.processes import Child, free_port, test_database_url
from tests.settlement.stack import BackOffice

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BIN = Path(sys.executable).parent
SYMBOL = "BTC-USDT"
PLATFORM = "[Meridian Exchange]"
EMAIL_TIMEOUT = 10  # the children's SMTP timeout: longer than the test holds a session before the kill
CLAIM_SECONDS = 12  # longer than one attempt may last (EMAIL_TIMEOUT)


class HeldMailbox(Mailbox):
    """The SMTP server of ``test_channels``; while ``hold`` is set it keeps every session
    waiting before it takes the recipient (nothing of the message has reached it yet)."""

    def __init__(self):
        super().__init__()
        self.hold = False
        self.waiting = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        import asyncio

        self.waiting += 1
        try:
            while self.hold:
                await asyncio.sleep(0.05)
        finally:
            self.waiting -= 1
        envelope.rcpt_tos.append(address)
        return "250 OK"


def funded():
    """A funded trader whose deposits are told in-app only (their emails are not this test's)."""
    from ledger.services import deposit_credit
    from notifications.models import NotificationPreference
    from tests.factories import UserFactory

    user = UserFactory()
    NotificationPreference.objects.create(user=user, kind="deposit_credited", channel="email", enabled=False)
    for asset, amount in (("USDT", "100000"), ("BTC", "10")):
        deposit_credit(user=user, asset=asset, amount=Decimal(amount), txid=f"stack-test-{asset}-{user.pk}")
    return user


def wait_until(check, timeout: float, what: str, children=()) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        for child in children:
            assert child.alive, f"{child.name} exited:\n{''.join(child.lines[-40:])}"
        time.sleep(0.1)
    logs = "\n".join(f"--- {c.name}:\n{''.join(c.lines[-25:])}" for c in children)
    raise AssertionError(f"not within {timeout:g}s: {what}\n{logs}")


class Api:
    """One trader's HTTP client of the web process."""

    def __init__(self, port: int, user):
        self.port, self.user = port, user
        self.token = str(AccessToken.for_user(user))

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def order(self, side: str, price: str, quantity: str = "0.01") -> dict:
        status, body = self.request(
            "POST",
            "/api/v1/orders",
            {"symbol": SYMBOL, "side": side, "type": "limit", "price": price, "quantity": quantity},
        )
        assert status == 201, (status, body)
        return body

    def alert(self, condition: str, value: str) -> dict:
        status, body = self.request(
            "POST", "/api/v1/alerts", {"symbol": SYMBOL, "condition": condition, "value": value, "frequency": "once"}
        )
        assert status == 201, (status, body)
        return body

    def notifications(self) -> list[dict]:
        """Newest first, leaving out the deposits that funded the trader."""
        status, body = self.request("GET", "/api/v1/notifications")
        assert status == 200, (status, body)
        return [n for n in body["results"] if n["kind"] != "deposit_credited"]

    def kinds(self) -> Counter:
        return Counter(n["kind"] for n in self.notifications())


@pytest.fixture
def smtp():
    mailbox = HeldMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield mailbox, controller.port
    mailbox.hold = False
    controller.stop()


@pytest.fixture
def hooks():
    receiver = Receiver([])
    yield receiver
    receiver.close()


@pytest.fixture
def stack(markets, smtp, tmp_path):  # noqa: F811
    if not test_database_url().startswith("postgres"):
        pytest.skip("needs PostgreSQL and Redis")
    _, smtp_port = smtp
    office = BackOffice(
        tmp_path,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=smtp_port,
        EMAIL_TIMEOUT=EMAIL_TIMEOUT,
        DEFAULT_FROM_EMAIL="no-reply@meridian.test",
        NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE=1,
        NOTIFICATIONS_RETRY_BASE_SECONDS=1,
        NOTIFICATIONS_CLAIM_SECONDS=CLAIM_SECONDS,
        NOTIFICATIONS_SWEEP_GRACE_SECONDS=1,
    ).start_redis()
    office.web_port = free_port()
    try:
        yield office
    finally:
        office.shutdown()


def start_web(office: BackOffice) -> Child:
    web = Child(
        "web",
        [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(office.web_port), "trading.asgi:application"],
        {**office.env, "DB_POOL_SIZE": "4"},
        office.log_dir,
    ).start()
    office.children.append(web)
    return web


def start_alerts(office: BackOffice, name: str) -> Child:
    return office.spawn(name, [sys.executable, "manage.py", "run_alerts"])


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def test_notifications_and_alerts_in_stack_mode(stack, smtp, hooks):
    mailbox, _ = smtp
    office = stack
    web = start_web(office)
    worker = office.worker("worker1")
    beat = office.beat()
    engine = office.spawn("engine", [sys.executable, "manage.py", "run_engine", "--symbol", SYMBOL, "--ttl", "3"])
    alerts = start_alerts(office, "alerts1")
    running = [web, worker, beat, engine, alerts]

    trader, other, seller, buyer = (funded() for _ in range(4))
    api, other_api, seller_api, buyer_api = (Api(office.web_port, user) for user in (trader, other, seller, buyer))

    engine.wait_for("LEADER role=", timeout=60)
    worker.wait_for("ready.", timeout=60)
    alerts.wait_for("price alerts: watching 0 active", timeout=60)
    wait_until(lambda: healthy(office.web_port), 60, "daphne answers /healthz", running)

    # The trader's preferences, over HTTP: fills by email too, and a webhook.
    status, body = api.request(
        "PUT",
        "/api/v1/notifications/preferences",
        {"events": {"order_filled": {"email": True}}, "webhook_url": hooks.url},
    )
    assert status == 200, (status, body)
    status, preferences = api.request("GET", "/api/v1/notifications/preferences")
    assert preferences["events"]["order_filled"] == {"in_app": True, "email": True, "webhook": True}
    secret = preferences["webhook"]["secret"]

    # 1. A fill: in-app, email and webhook.
    sold = api.order("sell", "65000.00")
    other_api.order("buy", "65000.00")
    wait_until(lambda: len(mailbox.messages) == 1 and len(hooks.requests) == 1, 30, "the fill's email and webhook")
    [filled] = api.notifications()
    assert filled["kind"] == "order_filled" and filled["data"]["order_id"] == sold["id"]
    assert other_api.kinds() == {"order_filled": 1}  # the other side: in-app only, as by default

    # 2. A price alert created over HTTP fires on the trade that crosses it.
    above = api.alert("price_above", "65100.00")
    seller_api.order("sell", "65100.00")
    buyer_api.order("buy", "65100.00")
    wait_until(lambda: api.kinds()["price_alert"] == 1, 30, "the price alert told in-app", running)
    wait_until(lambda: len(mailbox.messages) == 2 and len(hooks.requests) == 2, 30, "the alert's email and webhook")

    # 3. The mail server stalls; three more fills are told; the worker dies mid-send.
    mailbox.hold = True
    resting = [api.order("sell", "65000.00") for _ in range(3)]
    other_api.order("buy", "65000.00", quantity="0.03")
    wait_until(lambda: api.kinds()["order_filled"] == 4, 30, "the three fills told in-app", running)
    stalled = Delivery.objects.filter(
        channel="email", notification__user=trader, notification__data__order_id__in=[o["id"] for o in resting]
    )
    wait_until(
        lambda: mailbox.waiting == 2 and stalled.filter(attempts=1, status=DeliveryStatus.PENDING).count() == 2,
        20,
        "two emails being sent while the SMTP server holds them",
        running,
    )
    worker.kill9()
    in_flight = set(stalled.filter(attempts=1).values_list("pk", flat=True))
    mailbox.hold = False
    worker = office.worker("worker2")

    # 4. Meanwhile the alerts process dies; an alert is created while it is away.
    alerts.kill9()
    below = api.alert("price_below", "64900.00")
    alerts = start_alerts(office, "alerts2")
    running = [web, worker, beat, engine, alerts]
    alerts.wait_for("price alerts: watching 1 active", timeout=60)
    seller_api.order("sell", "64900.00")
    buyer_api.order("buy", "64900.00")
    wait_until(lambda: api.kinds()["price_alert"] == 2, 30, "the alert created while run_alerts was down", running)

    wait_until(
        lambda: len(mailbox.messages) >= 6 and len(hooks.requests) >= 6,
        60,
        "every email and webhook after the new worker and the sweep",
        running,
    )
    wait_until(
        lambda: not Delivery.objects.filter(notification__user=trader).exclude(status=DeliveryStatus.SENT).exists(),
        15,
        "every delivery marked sent",
        running,
    )
    time.sleep(6)  # one more sweep: nothing is sent again

    # Exactly once everywhere: in-app (the API), email (the SMTP server), webhook (signed).
    told = api.notifications()
    assert Counter(n["kind"] for n in told) == {"order_filled": 4, "price_alert": 2}
    assert {n["data"]["order_id"] for n in told if n["kind"] == "order_filled"} == {
        sold["id"],
        *(o["id"] for o in resting),
    }
    assert {n["data"]["alert_id"] for n in told if n["kind"] == "price_alert"} == {above["id"], below["id"]}
    by_id = {n["id"]: n for n in told}

    emails = Counter(int(mail["X-Meridian-Notification"]) for _, mail in mailbox.messages)
    assert emails == dict.fromkeys(by_id, 1), emails
    for recipients, mail in mailbox.messages:
        notification = by_id[int(mail["X-Meridian-Notification"])]
        assert recipients == [trader.email] and mail["To"] == trader.email
        assert mail["From"] == "no-reply@meridian.test"
        assert mail["Subject"] == f"{PLATFORM} {notification['title']}"
        assert mail["X-Meridian-Kind"] == notification["kind"]
        assert mail.get_content().startswith(notification["body"])
        delivery = Delivery.objects.get(notification_id=notification["id"], channel="email")
        assert mail["Message-ID"] == f"<notification-{notification['id']}.delivery-{delivery.pk}@meridian.test>"
    alert_subjects = sorted(mail["Subject"] for _, mail in mailbox.messages if mail["X-Meridian-Kind"] == "price_alert")
    assert alert_subjects == [f"{PLATFORM} BTC-USDT is at or above 65100", f"{PLATFORM} BTC-USDT is at or below 64900"]

    webhooks = Counter(json.loads(body)["id"] for _, body in hooks.requests)
    assert webhooks == dict.fromkeys(by_id, 1), webhooks
    for headers, body in hooks.requests:
        assert verify(secret, headers, body), headers
        sent = json.loads(body)
        assert (sent["kind"], sent["title"], sent["data"]) == (
            by_id[sent["id"]]["kind"],
            by_id[sent["id"]]["title"],
            by_id[sent["id"]]["data"],
        )

    # The two emails the killed worker was sending: claimed once by it, sent by the new one.
    assert len(in_flight) == 2
    for delivery in Delivery.objects.filter(pk__in=in_flight):
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
        assert list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "ok")) == [(2, True)]
    assert Decimal(api.request("GET", "/api/v1/alerts")[1]["results"][0]["last_fired_price"]) == Decimal("64900")
