"""A real back office for fault tests: a private Redis (broker and venue store), Celery
workers, celery beat and relays as child processes on the test database. Each child runs in
its own session so ``kill -9`` takes its whole process group (a prefork worker's children
die with it, as in a real crash)."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

from tests.processes import Child, free_port, test_database_url

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# workers that talk to no other worker: quicker to start, nothing to wait for
QUIET = ("--without-gossip", "--without-mingle", "--without-heartbeat")


class BackOffice:
    """Start with ``BackOffice(tmp_path, **settings_env).start_redis()``, then add processes."""

    def __init__(self, log_dir: Path, **env):
        self.log_dir = log_dir
        self.redis_port = free_port()
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.venue_prefix = f"test:venue:{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "CELERY_QUEUE": self.queue,
            "SETTLEMENT_VENUE_KEY_PREFIX": self.venue_prefix,
            "DEBUG": "0",
            "HTTPS": "0",
            "PYTHONUNBUFFERED": "1",
            **{key: str(value) for key, value in env.items()},
        }
        self.children: list[Child] = []
        self.redis: Child | None = None

    def start_redis(self) -> BackOffice:
        self.redis = Child(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            self.env,
            self.log_dir,
        ).start()
        self.redis.wait_for("Ready to accept connections")
        return self

    def spawn(self, name: str, argv: list[str]) -> Child:
        child = Child(name, argv, self.env, self.log_dir).start()
        self.children.append(child)
        return child

    def worker(self, name: str, concurrency: int = 2) -> Child:
        return self.spawn(
            name,
            [str(BIN / "celery"), "-A", "trading", "worker", "-Q", self.queue, "-n", f"{name}@%h-{self.queue}",
             "--concurrency", str(concurrency), "-l", "info", *QUIET],
        )  # fmt: skip

    def venue_worker(self, name: str, concurrency: int = 8) -> Child:
        """The venue executor as the Procfile runs it: step 3's queue on a thread pool."""
        return self.spawn(
            name,
            [str(BIN / "celery"), "-A", "trading", "worker", "-Q", f"{self.queue}.venue",
             "-n", f"{name}@%h-{self.queue}", "--pool", "threads", "--concurrency", str(concurrency), "-l", "info",
             *QUIET],
        )  # fmt: skip

    def beat(self) -> Child:
        return self.spawn(
            "beat",
            [str(BIN / "celery"), "-A", "trading", "beat", "-l", "info", "-s", str(self.log_dir / "beat-schedule")],
        )

    def relay(self, name: str = "relay", ttl: float = 1.0) -> Child:
        return self.spawn(name, [sys.executable, "manage.py", "run_relay", "--ttl", str(ttl)])

    def shutdown(self) -> None:
        for child in reversed(self.children):
            child.stop()
        if self.redis:
            self.redis.kill9()
