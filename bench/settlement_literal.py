"""The literal design of the settlement back office, for ``bench/settlement.py``'s comparison:
every outbox event is its own intake task, and each settlement then runs as a Celery chain of
one task per step (four tasks), with no batching.

The steps themselves are the product's (``settlement.services.settlements_run`` over one step,
step 3 at the venue inside its step task); what differs is how work travels: a message per
order and per step. The variant's workers load this module (``celery worker --include
bench.settlement_literal``) and its relay is this module's ``relay`` command, which publishes
to the literal intake instead of ``settlement.intake``:

    .venv/bin/python -m bench.settlement_literal relay [--ttl 3]

Recovery and reconciliation sweeps (``--beat``) stay the product's: a settlement they pick up
goes on through the product's path.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from celery import chain, shared_task

INTAKE = "bench.settlement_literal.intake"
STEP = "bench.settlement_literal.step"


@shared_task(name=INTAKE, time_limit=120)
def literal_intake(events: list[dict]) -> int:
    """Record the settlements, then one chain of four step tasks per settlement."""
    from settlement.services import recovery, settlements_accept

    recovery.events_taken(events)
    new_ids = settlements_accept(events=events)
    for settlement_id in new_ids:
        chain(literal_step.si([settlement_id], 1), *[literal_step.s(step) for step in (2, 3, 4)]).apply_async()
    return len(new_ids)


@shared_task(name=STEP, time_limit=120)
def literal_step(ids: list[int], step: int) -> list[int]:
    """One step, here (step 3 too); the ids that completed it go on to the next task."""
    from settlement.services import settlements_run

    return settlements_run(ids=ids, from_step=step, to_step=step, through_venue=True)


def publish(messages: list[dict]) -> None:
    """The relay's publish: marked as queued like the product's (the reconciliation leaves
    them alone), one intake task per event."""
    from settlement.services import recovery

    recovery.events_queued(messages)
    for message in messages:
        literal_intake.apply_async(args=[[message]], retry=False)


def relay(ttl: float) -> None:
    """``manage.py run_relay`` with the literal intake as its publish."""
    from settlement.relay import listen_for_commits, relay_singleton

    singleton = relay_singleton(ttl=ttl, announce=print, publish=publish)
    stop = threading.Event()
    threading.Thread(target=listen_for_commits, args=(singleton.wake, stop), name="relay-listen", daemon=True).start()
    try:
        singleton.run()
    finally:
        stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["relay"])
    parser.add_argument("--ttl", type=float, default=3.0, help="the relay lease's time-to-live in seconds")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
    import django

    django.setup()
    from trading.celery import app  # noqa: F401  (the Celery app the tasks above publish through)

    relay(args.ttl)


if __name__ == "__main__":
    sys.exit(main())
