"""Failure drills with real processes (as in test_drill.py): ``manage.py run_monitor`` on the
test database and a private ``redis-server``, its alerts emailed to an SMTP server in this
process.

*The database connection holder killed*: the relay is the process that holds the outbox's
connection (it tails the outbox under LISTEN/NOTIFY, as Canal tails the binlog in the seed
design) and the ``relay`` lease. Its connections terminated by the server
(``pg_terminate_backend``): it reconnects and leads on, and nobody is alerted. ``kill -9`` of
the leader with a standby running: the standby takes over within the lease's TTL and nobody
is alerted. ``kill -9`` of the last one: the relay check alerts within 15 s; a relay started
again (systemd's restart) takes the lease and the recovery is told.

*The feed's sources all stale*: the real feed process whose price sources stop answering:
the feed writes stale marks at its next tick, the feed check alerts within 15 s, and clears
once the sources answer again."""

from __future__ import annotations

import sys
import time

import pytest
from django.db import connection

from marketdata.models import IndexPrint
from ops.models import Incident
from tests.ops.test_drill import ALERT_WITHIN, mailbox, wait_until  # noqa: F401 (mailbox: a fixture)
from tests.processes import Child, test_database_url
from tests.settlement.stack import BackOffice
from trading.models import Lease

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def alerting_office(tmp_path, smtp_port: int, **env) -> BackOffice:
    return BackOffice(
        tmp_path,
        OPS_ALERT_EMAILS="ops@meridian.test",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=smtp_port,
        EMAIL_TIMEOUT=2,
        **env,
    ).start_redis()


def rounds_ok_after(monitor, count: int) -> bool:
    """A round after the first ``count`` lines of the monitor found every check ok."""
    return any("failing_probes=- " in line for line in monitor.lines[count:] if line.startswith("ROUND"))


def test_the_relay_killed_fails_over_silently_and_the_last_one_killed_is_alerted(
    transactional_db,
    tmp_path,
    mailbox,  # noqa: F811
):
    if not test_database_url().startswith("postgres"):
        pytest.skip("needs PostgreSQL")
    box, smtp_port = mailbox
    office = alerting_office(tmp_path, smtp_port, MONITOR_CHECKS="relay")
    argv = [sys.executable, "manage.py", "run_relay", "--ttl", "3"]  # the Procfile's TTL

    def relay(name: str) -> Child:
        # named in pg_stat_activity, so its connections can be found
        env = {**office.env, "DATABASE_URL": f"{office.env['DATABASE_URL']}?application_name={name}"}
        child = Child(name, argv, env, tmp_path).start()
        office.children.append(child)
        return child

    try:
        leader = relay("relay-a")
        monitor = office.spawn("monitor", [sys.executable, "manage.py", "run_monitor"])
        leader.wait_for("LEADER role=relay", timeout=60)
        # a standby waits on an unexpired lease, even while the leader steps down and back up
        standby = relay("relay-b")
        monitor.wait_for("LEADER role=monitor", timeout=60)
        monitor.wait_for("ROUND checks=1 failing_probes=-", timeout=20)

        # Its database connections are killed by the server: it reconnects and leads on, unalerted.
        seen, said = len(monitor.lines), len(leader.lines)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'relay-a'"
            )
            assert cursor.fetchone()[0] >= 1
        standby.wait_for("STANDBY role=relay", timeout=60)
        wait_until(lambda: rounds_ok_after(monitor, seen), 12, "a round after the connections were killed", monitor)
        holder = Lease.objects.get(name="relay").holder
        assert leader.alive and f"holder={holder}" in "".join(leader.lines), "".join(leader.lines[said:])

        # The leader dies with its connection: the standby takes over within the TTL, no alert.
        seen = len(monitor.lines)
        leader.kill9()
        took_over_in = standby.wait_for("LEADER role=relay", timeout=10)
        assert took_over_in <= 3 + 2, took_over_in
        wait_until(lambda: rounds_ok_after(monitor, seen), 12, "a round with the standby leading", monitor)
        assert box.messages == [] and not Incident.objects.exists()

        # The last relay dies: the outbox is no longer published.
        standby.kill9()
        killed_at = time.monotonic()
        wait_until(lambda: len(box.messages) >= 1, ALERT_WITHIN, "the relay alert email", monitor)
        alerted_in = time.monotonic() - killed_at
        assert alerted_in <= ALERT_WITHIN
        assert box.subjects() == ["[Meridian Exchange] ALERT: relay is failing"]
        incident = Incident.objects.get(check_name="relay", resolved_at=None)
        assert incident.detail["error"] == "no relay holds the lease" and incident.alerted_at

        # systemd starts it again: it takes the lapsed lease, the check clears.
        restarted = relay("relay-c")
        restarted.wait_for("LEADER role=relay", timeout=60)
        wait_until(lambda: len(box.messages) >= 2, ALERT_WITHIN, "the relay recovery email", monitor)
        assert box.subjects()[1] == "[Meridian Exchange] RECOVERED: relay is ok again"
        incident.refresh_from_db()
        assert incident.resolved_at is not None and incident.recovery_sent_at is not None
        assert len(box.messages) == 2 and monitor.alive
        print(f"relay: standby led {took_over_in:.1f}s after the kill; alert {alerted_in:.1f}s after the last kill")
    finally:
        office.shutdown()


def test_the_feeds_sources_all_stale_is_alerted_within_15s_and_clears(
    transactional_db,
    tmp_path,
    mailbox,  # noqa: F811
):
    if not test_database_url().startswith("postgres"):
        pytest.skip("needs PostgreSQL")
    box, smtp_port = mailbox
    off = tmp_path / "sources-off"
    office = alerting_office(tmp_path, smtp_port, MONITOR_CHECKS="feed", FEED_SOURCES_OFF_FILE=str(off))
    try:
        feed = office.spawn("feed", [sys.executable, "tests/ops/feed_with_switchable_sources.py"])
        monitor = office.spawn("monitor", [sys.executable, "manage.py", "run_monitor"])
        feed.wait_for("LEADER role=feed", timeout=60)
        monitor.wait_for("LEADER role=monitor", timeout=60)
        wait_until(lambda: rounds_ok_after(monitor, 0), 30, "a round with a fresh index", monitor)
        assert not IndexPrint.objects.filter(stale=True).exists()

        # Every source stops answering: the index has no price from the next tick on.
        off.touch()
        stopped_at = time.monotonic()
        wait_until(lambda: IndexPrint.objects.filter(stale=True).exists(), 5, "a stale mark", feed)
        wait_until(lambda: len(box.messages) >= 1, ALERT_WITHIN, "the feed alert email", monitor)
        alerted_in = time.monotonic() - stopped_at
        assert alerted_in <= ALERT_WITHIN
        assert box.subjects() == ["[Meridian Exchange] ALERT: feed is failing"]
        incident = Incident.objects.get(check_name="feed", resolved_at=None)
        assert incident.detail["error"].startswith("stale index: BTC, ETH"), incident.detail
        excluded = incident.detail["stale_sources"]["BTC"]
        assert excluded and set(excluded.values()) == {"missing"}, incident.detail
        assert feed.alive  # the feed keeps its lease and keeps writing (stale) marks

        # The sources answer again: real prints, the check clears.
        off.unlink()
        back_at = time.monotonic()
        wait_until(lambda: len(box.messages) >= 2, ALERT_WITHIN, "the feed recovery email", monitor)
        cleared_in = time.monotonic() - back_at
        assert box.subjects()[1] == "[Meridian Exchange] RECOVERED: feed is ok again"
        incident.refresh_from_db()
        assert incident.resolved_at is not None and incident.recovery_sent_at is not None
        assert len(box.messages) == 2 and monitor.alive
        print(f"feed: alert {alerted_in:.1f}s after the sources stopped, recovery {cleared_in:.1f}s after")
    finally:
        office.shutdown()
