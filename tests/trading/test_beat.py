"""celery beat's scheduler: the tasks of BEAT_IN_PROCESS_TASKS run in beat's own process
(no broker, no worker), and it makes the schedule file's folder when it is missing."""

from __future__ import annotations

import pytest
from celery.beat import ScheduleEntry
from django.conf import settings
from django.utils import timezone

from ops.models import Heartbeat
from trading.beat import Scheduler
from trading.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_heartbeat_runs_in_beats_process_and_stamps_at_once(tmp_path):
    assert "ops.heartbeat" in settings.BEAT_IN_PROCESS_TASKS
    assert settings.CELERY_BEAT_SCHEDULER == "trading.beat:Scheduler"
    schedule_file = tmp_path / "not" / "yet" / "there" / "schedule"
    scheduler = Scheduler(app=app, schedule_filename=str(schedule_file), lazy=False)
    try:
        assert schedule_file.parent.is_dir()
        entry = ScheduleEntry(name="ops-heartbeat", task="ops.heartbeat", schedule=2.0, app=app)
        assert not Heartbeat.objects.filter(name="beat").exists()
        result = scheduler.apply_async(entry)
        assert result.successful(), result.traceback
        assert Heartbeat.objects.filter(name="beat").exists()
        first = Heartbeat.objects.get(name="beat").at
        scheduler.apply_async(entry)
        assert Heartbeat.objects.get(name="beat").at > first
    finally:
        scheduler.close()


def test_a_heartbeat_that_cannot_get_its_row_gives_up_and_beat_goes_on(tmp_path, settings):
    """A stuck transaction holds the heartbeat's row: the stamp fails after
    HEARTBEAT_TIMEOUT_MS (its result says so) instead of holding beat's loop."""
    import time

    import psycopg

    from tests.processes import test_database_url

    settings.HEARTBEAT_TIMEOUT_MS = 300
    Heartbeat.objects.create(name="beat", at=timezone.now())
    scheduler = Scheduler(app=app, schedule_filename=str(tmp_path / "schedule"), lazy=False)
    entry = ScheduleEntry(name="ops-heartbeat", task="ops.heartbeat", schedule=2.0, app=app)
    try:
        with psycopg.connect(test_database_url()) as stuck:
            stuck.execute("SELECT 1 FROM ops_heartbeat WHERE name = 'beat' FOR UPDATE")
            started = time.monotonic()
            result = scheduler.apply_async(entry)
            waited = time.monotonic() - started
            assert result.failed() and "statement timeout" in str(result.result), result.traceback
            assert 0.3 <= waited < 3, waited
        assert scheduler.apply_async(entry).successful()  # the lock gone, the next stamp goes through
    finally:
        scheduler.close()
