"""celery beat's scheduler: the tasks of BEAT_IN_PROCESS_TASKS run in beat's own process
(no broker, no worker), and it makes the schedule file's folder when it is missing."""

from __future__ import annotations

import pytest
from celery.beat import ScheduleEntry
from django.conf import settings

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
