"""Failure drill with real processes: ``manage.py run_monitor`` on the test database and a
private ``redis-server``, its alerts emailed to an SMTP server (aiosmtpd) in this process.

Redis is killed: within 15 s there is an open ``redis`` incident, a staff notification and
an email; Redis is started again: the incident is resolved and a recovery email follows.
Then a maintenance window is declared and Redis killed again: the incident is recorded but
nobody is alerted.

PostgreSQL becomes unreachable for the monitor (a TCP proxy it connects through is cut): it
cannot hold its lease nor record anything, yet the email goes out within 15 s, the recovery
when it is back, and the incident is recorded then."""

from __future__ import annotations

import sys
import time
from email import message_from_bytes
from email.policy import default as default_policy
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiosmtpd.controller import Controller

from notifications.models import Notification
from ops.models import Incident
from ops.services import maintenance_declare
from tests.factories import StaffFactory, UserFactory
from tests.processes import free_port, test_database_url
from tests.settlement.stack import BackOffice
from tests.tcpproxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ALERT_WITHIN = 15.0


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default_policy)))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [mail["Subject"] for _, mail in self.messages]


def wait_until(check, timeout: float, what: str, child=None) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        if child is not None and not child.alive:
            raise AssertionError(f"the monitor exited:\n{''.join(child.lines[-40:])}")
        time.sleep(0.2)
    tail = "" if child is None else "".join(child.lines[-30:])
    raise AssertionError(f"not within {timeout:g}s: {what}\n{tail}")


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


def test_redis_down_is_alerted_within_15s_and_its_recovery_told(transactional_db, tmp_path, mailbox):
    if not test_database_url().startswith("postgres"):
        pytest.skip("needs PostgreSQL")
    box, smtp_port = mailbox
    staff = StaffFactory()
    trader = UserFactory()
    office = BackOffice(
        tmp_path,
        MONITOR_CHECKS="database,redis",
        OPS_ALERT_EMAILS="ops@meridian.test",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=smtp_port,
        EMAIL_TIMEOUT=2,
        DEFAULT_FROM_EMAIL="monitor@meridian.test",
    ).start_redis()
    try:
        monitor = office.spawn("monitor", [sys.executable, "manage.py", "run_monitor"])
        monitor.wait_for("LEADER role=monitor", timeout=60)
        monitor.wait_for("ROUND checks=2 failing_probes=-", timeout=20)

        # Redis goes away.
        office.redis.kill9()
        down_at = time.monotonic()
        wait_until(lambda: len(box.messages) >= 1, ALERT_WITHIN, "the alert email", monitor)
        alerted_in = time.monotonic() - down_at
        assert alerted_in <= ALERT_WITHIN
        recipients, mail = box.messages[0]
        assert recipients == ["ops@meridian.test"]
        assert mail["Subject"] == "[Meridian Exchange] ALERT: redis is failing"
        incident = Incident.objects.get(check_name="redis", resolved_at=None)
        assert incident.alerted_at is not None and not incident.silenced
        wait_until(
            lambda: Notification.objects.filter(user=staff, kind="ops_alert").exists(),
            ALERT_WITHIN - alerted_in,
            "the staff notification",
            monitor,
        )
        assert not Notification.objects.filter(user=trader).exists()
        assert not Incident.objects.exclude(check_name="redis").exists()  # the database stayed ok

        # Redis is back (empty, as after a restart without persistence).
        office.start_redis()
        wait_until(lambda: len(box.messages) >= 2, ALERT_WITHIN, "the recovery email", monitor)
        assert box.subjects() == [
            "[Meridian Exchange] ALERT: redis is failing",
            "[Meridian Exchange] RECOVERED: redis is ok again",
        ]
        incident.refresh_from_db()
        assert incident.resolved_at is not None and incident.recovery_sent_at is not None
        wait_until(
            lambda: Notification.objects.filter(user=staff, kind="ops_alert").count() == 2,
            5,
            "the recovery notification",
            monitor,
        )

        # A planned Redis restart inside a maintenance window: recorded, not alerted.
        maintenance_declare(minutes=5, reason="Redis upgrade")
        office.redis.kill9()
        wait_until(
            lambda: Incident.objects.filter(check_name="redis", resolved_at=None).exists(),
            ALERT_WITHIN,
            "the incident during maintenance",
            monitor,
        )
        time.sleep(2)  # an alert would be on its way by now
        silent = Incident.objects.get(check_name="redis", resolved_at=None)
        assert silent.silenced and silent.alerted_at is None
        assert len(box.messages) == 2
        assert Notification.objects.filter(kind="ops_alert").count() == 2
        assert monitor.alive
    finally:
        office.shutdown()


def test_the_database_out_of_reach_is_still_alerted_by_email(transactional_db, tmp_path, mailbox):
    if not test_database_url().startswith("postgres"):
        pytest.skip("needs PostgreSQL")
    box, smtp_port = mailbox
    db = urlsplit(test_database_url())
    proxy = TcpProxy(db.hostname or "127.0.0.1", db.port or 5432).start()
    auth = db.netloc.rsplit("@", 1)[0]
    office = BackOffice(
        tmp_path,
        DATABASE_URL=urlunsplit(db._replace(netloc=f"{auth}@127.0.0.1:{proxy.port}")),
        MONITOR_CHECKS="database,redis",
        OPS_ALERT_EMAILS="ops@meridian.test",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=smtp_port,
        EMAIL_TIMEOUT=2,
    ).start_redis()
    try:
        monitor = office.spawn("monitor", [sys.executable, "manage.py", "run_monitor"])
        monitor.wait_for("LEADER role=monitor", timeout=60)
        monitor.wait_for("ROUND checks=2 failing_probes=-", timeout=20)

        proxy.cut()
        cut_at = time.monotonic()
        wait_until(lambda: len(box.messages) >= 1, ALERT_WITHIN, "the database alert email", monitor)
        assert time.monotonic() - cut_at <= ALERT_WITHIN
        assert box.subjects() == ["[Meridian Exchange] ALERT: database is failing"]
        assert not Incident.objects.exists()  # nothing could be recorded meanwhile

        proxy.restore()
        wait_until(lambda: len(box.messages) >= 2, ALERT_WITHIN, "the database recovery email", monitor)
        assert box.subjects()[1] == "[Meridian Exchange] RECOVERED: database is ok again"
        wait_until(lambda: Incident.objects.filter(check_name="database").exists(), 5, "the incident", monitor)
        incident = Incident.objects.get(check_name="database")
        assert incident.resolved_at > incident.started_at and incident.alerted_at and incident.recovery_sent_at
        leads = sum(line.startswith("LEADER role=monitor") for line in monitor.lines)
        assert leads >= 2, "".join(monitor.lines[-30:])  # it took its lease back
        assert len(box.messages) == 2
    finally:
        proxy.restore()
        office.shutdown()
        proxy.close()


def test_a_hung_worker_or_beat_is_alerted_within_15s_alone_and_clears_when_it_runs_again(
    transactional_db, tmp_path, mailbox
):
    """A Celery worker stopped with SIGSTOP (hung, not dead): the workers' ping goes
    unanswered and only the celery check fails (beat stamps its heartbeat itself, so it stays
    ok). Then beat is stopped the same way: only the beat check fails. Each is alerted within
    15 s and told recovered when it runs again."""
    import os
    import signal

    if not test_database_url().startswith("postgres"):
        pytest.skip("needs PostgreSQL")
    box, smtp_port = mailbox
    office = BackOffice(
        tmp_path,
        MONITOR_CHECKS="celery,beat",
        MONITOR_CELERY_MIN_WORKERS=1,
        OPS_ALERT_EMAILS="ops@meridian.test",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=smtp_port,
        EMAIL_TIMEOUT=2,
    ).start_redis()
    stopped = []
    try:
        worker = office.worker("worker", concurrency=1)
        beat = office.beat()
        monitor = office.spawn("monitor", [sys.executable, "manage.py", "run_monitor"])
        monitor.wait_for("LEADER role=monitor", timeout=60)
        wait_until(
            lambda: any("ROUND checks=2 failing_probes=- " in line for line in monitor.lines[-3:]),
            60,
            "a round with the worker and beat both ok",
            monitor,
        )
        assert box.messages == []

        for child, check in ((worker, "celery"), (beat, "beat")):
            os.killpg(child.proc.pid, signal.SIGSTOP)
            stopped.append(child)
            hung_at = time.monotonic()
            alert = f"[Meridian Exchange] ALERT: {check} is failing"
            wait_until(lambda alert=alert: alert in box.subjects(), ALERT_WITHIN, f"the {check} alert", monitor)
            assert time.monotonic() - hung_at <= ALERT_WITHIN
            time.sleep(6)  # a round more: the other check has still not failed
            assert set(Incident.objects.filter(resolved_at=None).values_list("check_name", flat=True)) == {check}

            os.killpg(child.proc.pid, signal.SIGCONT)
            stopped.remove(child)
            recovered = f"[Meridian Exchange] RECOVERED: {check} is ok again"
            wait_until(lambda r=recovered: r in box.subjects(), 25, f"the {check} recovery", monitor)
            assert not Incident.objects.filter(resolved_at=None).exists()
        assert len(box.messages) == 4  # one alert and one recovery each
    finally:
        for child in stopped:
            if child.alive:
                os.killpg(child.proc.pid, signal.SIGCONT)
        office.shutdown()
