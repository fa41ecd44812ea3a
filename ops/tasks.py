"""The beat's heartbeat: beat sends it every 2 seconds and a worker stamps it, so the
monitor's ``beat`` check sees that the schedule is running."""

from celery import shared_task

from . import services


@shared_task(name="ops.heartbeat", ignore_result=True, time_limit=10, soft_time_limit=5)
def heartbeat() -> None:
    services.heartbeat_stamp(name="beat")
