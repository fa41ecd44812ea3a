"""The Celery worker's consumer, reconnecting to the broker quickly.

Celery's consumer retries a lost broker connection after 2, 4, 6 … up to 30 seconds, so a
worker can sit idle for many seconds after Redis is back — while the settlement backlog
waits. Retrying every half second costs a refused TCP connect per attempt and lets the
backlog clear as soon as the broker answers.
"""

from __future__ import annotations

import functools

from celery.worker.consumer import Consumer as CeleryConsumer

RECONNECT = {"interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


class Consumer(CeleryConsumer):
    def ensure_connected(self, conn):
        conn.ensure_connection = functools.partial(conn.ensure_connection, **RECONNECT)
        return super().ensure_connected(conn)
