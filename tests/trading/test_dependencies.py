"""A process's view of PostgreSQL and Redis (``trading.dependencies``): one log line when a
service goes away and one when it is back, capped jittered backoff, and which errors mean
"unreachable"; the singleton loop and the engine runner riding out an outage in-process.
The same with real processes and real outages: ``test_outages.py``."""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest
import redis
from django.db import OperationalError, connection
from kombu.exceptions import OperationalError as BrokerError

from trading import dependencies
from trading.dependencies import (
    BROKER,
    POSTGRESQL,
    REDIS,
    backoff_delay,
    dependency,
    unavailable,
)
from trading.leases import Singleton, checkpoint_save, lease_acquire

TRANSACTIONAL = pytest.mark.django_db(transaction=True, available_apps=["trading"])


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "trading.dependencies"]


def _django_error(cause: Exception) -> OperationalError:
    """A database error as Django raises it: psycopg's error as its cause."""
    try:
        raise OperationalError(str(cause)) from cause
    except OperationalError as exc:
        return exc


class _ServerError(psycopg.OperationalError):
    sqlstate = "40P01"  # deadlock detected: the server answered


def test_unit_an_outage_is_one_line_down_and_one_line_back(caplog):
    service = dependencies.Dependency("redis")
    with caplog.at_level(logging.INFO, logger="trading.dependencies"):
        for _ in range(20):
            service.failed(redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."))
        assert service.down
        service.ok()
        service.ok()
    lines = _lines(caplog)
    assert len(lines) == 2, lines
    assert lines[0].startswith("DEPENDENCY DOWN redis: ConnectionError: Error 111 connecting")
    assert lines[1].startswith("DEPENDENCY BACK redis after ") and lines[1].endswith("(20 failed attempts)")
    assert not service.down


def test_unit_backoff_doubles_up_to_a_jittered_cap():
    for attempt, full in ((1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 2.0), (50, 2.0)):
        delays = [backoff_delay(attempt) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays), (attempt, min(delays), max(delays))
        assert max(delays) - min(delays) > full / 10  # jittered: processes do not retry in step


def test_unit_may_try_lets_one_attempt_through_per_backoff_while_down():
    service = dependencies.Dependency("redis")
    assert service.may_try()  # up: always
    delay = service.failed(redis.ConnectionError("refused"))
    assert [service.may_try() for _ in range(3)] == [False] * 3
    time.sleep(delay + 0.01)
    assert service.may_try()  # the next attempt is due: this caller makes it
    assert not service.may_try()  # and the others still wait
    service.ok()
    assert service.may_try()


def test_unit_which_errors_mean_a_service_is_unreachable():
    assert unavailable(redis.ConnectionError("refused")) == REDIS
    assert unavailable(redis.TimeoutError("Timeout reading from socket")) == REDIS
    assert unavailable(_django_error(psycopg.OperationalError("connection failed: Connection refused"))) == POSTGRESQL
    assert unavailable(psycopg.OperationalError("server closed the connection unexpectedly")) == POSTGRESQL
    assert unavailable(BrokerError("Error 111 connecting")) == BROKER
    # The server answering with an error is not an outage; nor is a bug.
    assert unavailable(_django_error(_ServerError("deadlock detected"))) is None
    assert unavailable(redis.ResponseError("WRONGTYPE")) is None
    assert unavailable(ValueError("bad")) is None


def _run(singleton: Singleton, until, timeout: float = 10) -> None:
    def target():
        try:
            singleton.run()
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        singleton.stop()
        thread.join(10)
    assert not thread.is_alive()


@TRANSACTIONAL
def test_unit_singleton_rides_out_redis_errors_from_its_work(caplog):
    lines: list[str] = []
    calls = {"work": 0, "lead": 0}

    def on_lead(epoch):
        calls["lead"] += 1

    def work(epoch):
        calls["work"] += 1
        if 3 <= calls["work"] <= 6:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        if calls["work"] == 8:
            dependency(REDIS).ok()  # the work reached Redis again
        checkpoint_save(name="s", epoch=epoch, holder="me", value={"n": calls["work"]})

    singleton = Singleton(
        "s", work=work, on_lead=on_lead, ttl=1.0, interval=0.01, holder="me", announce=lines.append, max_backoff=0.4
    )
    with caplog.at_level(logging.INFO, logger="trading.dependencies"):
        _run(singleton, lambda: calls["work"] >= 10)
    assert calls["work"] >= 10, lines
    # Its lease lives in PostgreSQL, which answered: it kept the lease (one tenure, renewed
    # between the retries) and rebuilt its state before each retry.
    assert [line.split(" holder=")[0] for line in lines if line.startswith(("LEADER", "STEPPED"))] == [
        "LEADER role=s epoch=1",
        "STEPPED DOWN role=s epoch=1: stopped, lease released",
    ]
    assert calls["lead"] == 1 + 4
    down, back = _lines(caplog)
    assert down.startswith("DEPENDENCY DOWN redis: ConnectionError") and back.startswith("DEPENDENCY BACK redis after")


@TRANSACTIONAL
def test_unit_singleton_still_ends_on_a_bug():
    def work(epoch):
        raise ValueError("a bug")

    singleton = Singleton("s", work=work, ttl=2.0, interval=0.01, holder="me", announce=lambda line: None)
    with pytest.raises(ValueError):
        singleton.run()
    assert lease_acquire(name="s", holder="other", ttl=1) == 2  # released on the way out
