"""Leases: unit tests of acquire/renew/release/fencing (run on PostgreSQL here and, by
``test_same_tests_pass_on_sqlite``, on SQLite too), and real-process tests of active-standby
failover: two contenders, ``kill -9`` of the leader, and a ``SIGSTOP``-paused leader whose
writes are refused after its successor took over."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import Error as DatabaseLibraryError
from django.db import OperationalError, connection, transaction
from django.db.models.functions import Now
from django.db.transaction import TransactionManagementError

from tests.processes import pytest_on_sqlite, test_database_url
from trading.leases import (
    LeaseLost,
    Singleton,
    bound_idle_transactions,
    checkpoint_load,
    checkpoint_save,
    checkpoint_write,
    fenced,
    lease_acquire,
    lease_release,
    lease_renew,
)
from trading.models import Lease, SingletonCheckpoint

ROOT = Path(__file__).resolve().parents[2]
CONTENDER = Path(__file__).with_name("lease_contender.py")
TTL = 1.5
# Committed for real, so other connections (threads, contender processes) see it; only the
# kernel's tables are flushed afterwards, which keeps teardown quick.
TRANSACTIONAL = pytest.mark.django_db(transaction=True, available_apps=["trading"])


def _expire(name: str) -> None:
    """Move the lease's expiry into the past by the database clock (as if the TTL ran out)."""
    Lease.objects.filter(name=name).update(expires_at=Now() - timedelta(seconds=1))


def _wait_until_expired(name: str, timeout: float = 5) -> None:
    """Poll (plain reads never wait for the row lock) until the database clock passes the expiry."""
    deadline = time.monotonic() + timeout
    while not Lease.objects.filter(name=name, expires_at__lte=Now()).exists():
        assert time.monotonic() < deadline, "lease did not expire"
        time.sleep(0.05)


# --- unit tests (backend-agnostic: also run on SQLite) ---------------------------------------


@pytest.mark.django_db
def test_unit_first_acquire_takes_epoch_one_and_excludes_others():
    assert lease_acquire(name="r", holder="a", ttl=5) == 1
    assert lease_acquire(name="r", holder="b", ttl=5) is None
    # Re-acquiring a lease one still holds keeps the epoch and extends it.
    assert lease_acquire(name="r", holder="a", ttl=5) == 1
    lease = Lease.objects.get(name="r")
    assert (lease.holder, lease.epoch) == ("a", 1)
    assert (lease.expires_at - lease.renewed_at).total_seconds() == pytest.approx(5, abs=0.01)
    assert lease.acquired_at <= lease.renewed_at


@pytest.mark.django_db
def test_unit_expiry_by_database_clock_hands_over_with_a_new_epoch():
    assert lease_acquire(name="r", holder="a", ttl=0.5) == 1
    assert lease_acquire(name="r", holder="b", ttl=0.5) is None
    time.sleep(0.6)
    assert lease_acquire(name="r", holder="b", ttl=5) == 2
    assert lease_renew(name="r", holder="a", epoch=1, ttl=5) is False
    assert lease_acquire(name="r", holder="a", ttl=5) is None


@pytest.mark.django_db
def test_unit_renew_only_for_the_current_holder_and_epoch():
    epoch = lease_acquire(name="r", holder="a", ttl=2)
    before = Lease.objects.get(name="r").expires_at
    assert lease_renew(name="r", holder="a", epoch=epoch, ttl=10) is True
    assert Lease.objects.get(name="r").expires_at > before
    assert lease_renew(name="r", holder="a", epoch=epoch + 1, ttl=10) is False
    assert lease_renew(name="r", holder="b", epoch=epoch, ttl=10) is False
    _expire("r")
    assert lease_renew(name="r", holder="a", epoch=epoch, ttl=10) is False
    assert lease_renew(name="nobody-has-this", holder="a", epoch=1, ttl=10) is False


@pytest.mark.django_db
def test_unit_own_lapsed_lease_comes_back_with_a_new_epoch():
    assert lease_acquire(name="r", holder="a", ttl=5) == 1
    _expire("r")
    assert lease_acquire(name="r", holder="a", ttl=5) == 2


@pytest.mark.django_db
def test_unit_release_lets_a_standby_in_at_once():
    epoch = lease_acquire(name="r", holder="a", ttl=30)
    assert lease_release(name="r", holder="b", epoch=epoch) is False
    assert lease_release(name="r", holder="a", epoch=epoch + 1) is False
    assert lease_acquire(name="r", holder="b", ttl=30) is None
    assert lease_release(name="r", holder="a", epoch=epoch) is True
    assert lease_acquire(name="r", holder="b", ttl=30) == epoch + 1
    assert lease_release(name="r", holder="a", epoch=epoch) is False


@pytest.mark.django_db
def test_unit_fenced_refuses_a_former_leader():
    assert lease_acquire(name="r", holder="a", ttl=5) == 1
    with transaction.atomic(), fenced("r", 1, "a"):
        pass
    for epoch, holder in [(2, "a"), (1, "b")]:
        with pytest.raises(LeaseLost), transaction.atomic(), fenced("r", epoch, holder):
            pass
    _expire("r")
    with pytest.raises(LeaseLost, match="expired"), transaction.atomic(), fenced("r", 1, "a"):
        pass
    assert lease_acquire(name="r", holder="b", ttl=5) == 2
    with pytest.raises(LeaseLost) as lost, transaction.atomic(), fenced("r", 1, "a"):
        pass
    assert lost.value.code == "lease_lost" and lost.value.status == 409
    with pytest.raises(LeaseLost), transaction.atomic(), fenced("no-such-role", 1, "a"):
        pass


@pytest.mark.django_db
def test_unit_checkpoint_is_written_only_by_the_current_epoch():
    assert checkpoint_load("r") is None
    assert checkpoint_load("r", {"cursor": 0}) == {"cursor": 0}
    assert lease_acquire(name="r", holder="a", ttl=5) == 1
    checkpoint_save(name="r", epoch=1, holder="a", value={"cursor": 7})
    assert checkpoint_load("r") == {"cursor": 7}
    _expire("r")
    assert lease_acquire(name="r", holder="b", ttl=5) == 2
    with pytest.raises(LeaseLost):
        checkpoint_save(name="r", epoch=1, holder="a", value={"cursor": 99})
    assert checkpoint_load("r") == {"cursor": 7}
    checkpoint_save(name="r", epoch=2, holder="b", value={"cursor": 8})
    row = SingletonCheckpoint.objects.get(name="r")
    assert (row.epoch, row.value) == (2, {"cursor": 8})


@TRANSACTIONAL
def test_unit_fenced_must_run_inside_the_writers_transaction():
    assert lease_acquire(name="r", holder="a", ttl=5) == 1
    with pytest.raises(TransactionManagementError), fenced("r", 1, "a"):
        pass
    with pytest.raises(TransactionManagementError):
        checkpoint_write(name="r", epoch=1, holder="a", value={})
    checkpoint_save(name="r", epoch=1, holder="a", value={"ok": True})  # opens its own
    assert checkpoint_load("r") == {"ok": True}


@pytest.mark.django_db
def test_unit_leases_command_lists_every_role(capsys):
    lease_acquire(name="engine:BTC-USDT", holder="host-1:42:abc", ttl=30)
    lease_acquire(name="relay", holder="host-2:7:def", ttl=30)
    _expire("relay")
    call_command("leases")
    out = capsys.readouterr().out
    assert re.search(r"engine:BTC-USDT\s+host-1:42:abc\s+1\s+held, expires in \d+\.\ds", out), out
    assert re.search(r"relay\s+host-2:7:def\s+1\s+expired \d+\.\ds ago", out), out


@TRANSACTIONAL
def test_unit_singleton_survives_a_database_error_and_releases_on_stop():
    lines: list[str] = []
    calls = {"n": 0}

    def work(epoch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OperationalError("server closed the connection unexpectedly")
        checkpoint_save(name="s", epoch=epoch, holder="me", value={"n": calls["n"]})

    runner = Singleton("s", work=work, ttl=2.0, interval=0.02, holder="me", announce=lines.append, max_backoff=0.2)

    def target():
        try:
            runner.run()
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while calls["n"] < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
        thread.join(5)
    assert not thread.is_alive()
    text = "\n".join(lines)
    assert calls["n"] >= 8, text
    assert [line.split(" holder=")[0] for line in lines if line.startswith("LEADER")] == [
        "LEADER role=s epoch=1",  # the lease was still valid: same holder, same epoch
        "LEADER role=s epoch=1",
    ], text
    assert "DATABASE ERROR role=s: OperationalError" in text
    assert "STEPPED DOWN role=s epoch=1: database error" in text
    assert lines[-1] == "STOPPED role=s holder=me"
    # Released on stop: a standby can take over at once, with the next epoch.
    assert lease_acquire(name="s", holder="other", ttl=1) == 2


@TRANSACTIONAL
def test_takeover_waits_for_a_fenced_write_in_flight():
    """A leader whose lease expires in the middle of a fenced transaction still commits it;
    the successor gets in only afterwards, so the two epochs' writes never interleave."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes whole write transactions; nothing to interleave")
    assert lease_acquire(name="r", holder="a", ttl=1.0) == 1
    inside, finish = threading.Event(), threading.Event()

    def slow_leader():
        try:
            with transaction.atomic(durable=True), fenced("r", 1, "a"):
                inside.set()
                finish.wait(5)
                SingletonCheckpoint.objects.create(name="r", epoch=1, value={"by": "a"})
        finally:
            connection.close()

    thread = threading.Thread(target=slow_leader)
    thread.start()
    try:
        assert inside.wait(5)
        _wait_until_expired("r")
        assert lease_acquire(name="r", holder="b", ttl=5) is None  # lock timeout: write in flight
        finish.set()
        thread.join(5)
        assert lease_acquire(name="r", holder="b", ttl=5) == 2
    finally:
        finish.set()
        thread.join(5)
    assert SingletonCheckpoint.objects.get(name="r").epoch == 1
    with pytest.raises(LeaseLost):
        checkpoint_save(name="r", epoch=1, holder="a", value={"by": "a", "late": True})
    checkpoint_save(name="r", epoch=2, holder="b", value={"by": "b"})
    assert checkpoint_load("r") == {"by": "b"}


@TRANSACTIONAL
def test_leader_paused_inside_a_fenced_transaction_cannot_block_the_takeover():
    """The paused leader holds the lease row lock; the server ends its idle transaction
    after the TTL, so the standby gets in, and the paused leader's write is lost with it."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no idle-in-transaction timeout (and embedded mode is one process)")
    assert lease_acquire(name="r", holder="a", ttl=1.0) == 1
    inside, outcome = threading.Event(), {}

    def paused_leader():
        try:
            bound_idle_transactions(0.5)
            with transaction.atomic(durable=True), fenced("r", 1, "a"):
                inside.set()
                time.sleep(3.0)  # paused, idle in its transaction, holding the lease row
                SingletonCheckpoint.objects.create(name="r", epoch=1, value={"by": "a"})
            outcome["committed"] = True
        except DatabaseLibraryError as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=paused_leader)
    thread.start()
    try:
        assert inside.wait(5)
        started = time.monotonic()
        while (epoch := lease_acquire(name="r", holder="b", ttl=5)) is None and time.monotonic() - started < 5:
            time.sleep(0.05)
        took = time.monotonic() - started
    finally:
        thread.join(10)
    assert epoch == 2
    assert took < 2.5, f"takeover took {took:.2f}s: it waited for the paused leader to wake up"
    assert "error" in outcome and "committed" not in outcome, outcome
    assert not SingletonCheckpoint.objects.filter(name="r").exists()


@pytest.mark.django_db
def test_admin_shows_leases_and_checkpoints_read_only(staff, password):
    from django.test import Client

    from tests.factories import enable_totp, totp_code

    lease_acquire(name="relay", holder="host-1:42:abc", ttl=30)
    checkpoint_save(name="relay", epoch=1, holder="host-1:42:abc", value={"cursor": [5, 17]})
    device = enable_totp(staff)
    client = Client()
    response = client.post(
        "/admin/login/",
        {
            "username": staff.email,
            "password": password,
            "otp_device": device.persistent_id,
            "otp_token": totp_code(device),
            "next": "/admin/",
        },
    )
    assert response.status_code == 302
    listing = client.get("/admin/trading/lease/")
    assert listing.status_code == 200 and b"host-1:42:abc" in listing.content
    assert client.get("/admin/trading/lease/add/").status_code == 403
    assert client.get("/admin/trading/lease/relay/change/").status_code == 200  # view only
    assert client.post("/admin/trading/lease/relay/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/trading/singletoncheckpoint/relay/change/").status_code == 200
    assert Lease.objects.get(name="relay").holder == "host-1:42:abc"


# --- real processes ----------------------------------------------------------------------------


class Contender:
    def __init__(self, role: str, label: str, env: dict, log_dir: Path):
        self.label = label
        self.holder = f"{label}-{uuid.uuid4().hex[:6]}"
        self.lines: list[tuple[float, str]] = []
        self._queue: queue.Queue = queue.Queue()
        self.stderr_path = log_dir / f"{label}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(CONTENDER), role, str(TTL), self.holder],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        for line in self.proc.stdout:
            item = (time.monotonic(), line.rstrip("\n"))
            self.lines.append(item)
            self._queue.put(item)

    def wait_for(self, pattern: str, timeout: float, after: float = 0.0) -> tuple[float, re.Match]:
        """The first line (arriving after monotonic time ``after``) matching ``pattern``."""
        regex = re.compile(pattern)
        for at, line in list(self.lines):
            if at >= after and (match := regex.search(line)):
                return at, match
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if at >= after and (match := regex.search(line)):
                return at, match
        raise AssertionError(f"{self.label}: no line matching {pattern!r} within {timeout}s\n{self.report()}")

    def text(self, after: float = 0.0) -> list[str]:
        return [line for at, line in list(self.lines) if at >= after]

    def report(self) -> str:
        err = self.stderr_path.read_text(errors="replace")[-3000:] if self.stderr_path.exists() else ""
        return f"--- {self.label} stdout:\n" + "\n".join(self.text()) + f"\n--- {self.label} stderr (tail):\n{err}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(5)
        finally:
            self._stderr.close()
            self._reader.join(2)


def _subprocess_env() -> dict:
    """The contenders use the test database the test runs on, through the same settings
    every platform process reads (DATABASE_URL, or SQLITE_PATH in embedded mode)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING", "LOG_JSON": "0"}
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = test_database_url()
    else:
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        env["SQLITE_PATH"] = str(db["NAME"])
        env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


@pytest.fixture
def contenders(transactional_db, tmp_path):
    """Start contender processes on the test database; all are killed at teardown. Tests
    using it carry the TRANSACTIONAL mark."""
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("an in-memory SQLite test database cannot be shared with other processes")
    role = f"test-role-{uuid.uuid4().hex[:8]}"
    env = _subprocess_env()
    started: list[Contender] = []

    def start(label: str) -> Contender:
        contender = Contender(role, label, env, tmp_path)
        started.append(contender)
        return contender

    start.role = role
    try:
        yield start
    finally:
        for contender in started:
            contender.kill()


def _leader_and_standby(a: Contender, b: Contender, timeout: float = 30) -> tuple[Contender, Contender, int]:
    # Generous: two Django processes start at once, on a machine the rest of the suite loads.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for me, other in ((a, b), (b, a)):
            for _, line in list(me.lines):
                if match := re.match(r"LEADER role=\S+ epoch=(\d+)", line):
                    other.wait_for(r"^STANDBY", timeout=max(10.0, deadline - time.monotonic()))
                    return me, other, int(match.group(1))
        time.sleep(0.02)
    raise AssertionError("no leader\n" + a.report() + "\n" + b.report())


def _leaders(c: Contender, after: float = 0.0) -> list[str]:
    return [line for line in c.text(after) if line.startswith("LEADER")]


@TRANSACTIONAL
def test_two_contenders_exactly_one_leader(contenders):
    a, b = contenders("alpha"), contenders("bravo")
    leader, standby, epoch = _leader_and_standby(a, b)
    writes_before = sum(line.startswith("WRITE ok") for line in leader.text())
    time.sleep(3)
    assert a.proc.poll() is None and b.proc.poll() is None
    assert len(_leaders(leader)) == 1, leader.report()
    assert _leaders(standby) == [], standby.report()
    assert not any(line.startswith("WRITE") for line in standby.text()), standby.report()
    assert sum(line.startswith("WRITE ok") for line in leader.text()) >= writes_before + 15
    lease = Lease.objects.get(name=contenders.role)
    assert (lease.holder, lease.epoch) == (leader.holder, epoch)
    assert SingletonCheckpoint.objects.get(name=contenders.role).value["holder"] == leader.holder

    # A graceful stop releases the lease: the standby takes over at once, not after the TTL.
    stopped_at = time.monotonic()
    leader.proc.send_signal(signal.SIGTERM)
    assert leader.proc.wait(5) == 0
    at, match = standby.wait_for(r"^LEADER role=\S+ epoch=(\d+)", timeout=TTL + 3, after=stopped_at)
    assert int(match.group(1)) == epoch + 1
    assert at - stopped_at < TTL, standby.report()
    assert leader.text()[-2:] == [
        f"STEPPED DOWN role={contenders.role} epoch={epoch}: stopped, lease released",
        f"STOPPED role={contenders.role} holder={leader.holder}",
    ], leader.report()


@TRANSACTIONAL
def test_kill_9_the_leader_and_the_standby_takes_over_within_the_ttl(contenders):
    a, b = contenders("alpha"), contenders("bravo")
    leader, standby, epoch = _leader_and_standby(a, b)
    leader.wait_for(r"^WRITE ok", timeout=5)
    killed_at = time.monotonic()
    os.kill(leader.pid, signal.SIGKILL)
    at, match = standby.wait_for(r"^LEADER role=\S+ epoch=(\d+)", timeout=TTL + 3, after=killed_at)
    took = at - killed_at
    assert took <= TTL + 1.0, f"takeover took {took:.2f}s\n{standby.report()}"
    assert int(match.group(1)) == epoch + 1
    standby.wait_for(r"^WRITE ok", timeout=2, after=at)
    row = SingletonCheckpoint.objects.get(name=contenders.role)
    assert (row.epoch, row.value["holder"]) == (epoch + 1, standby.holder)
    print(f"takeover after kill -9: {took:.2f}s (ttl {TTL}s)")


@TRANSACTIONAL
def test_sigstopped_leader_is_fenced_off_and_steps_down(contenders):
    a, b = contenders("alpha"), contenders("bravo")
    old, new, epoch = _leader_and_standby(a, b)
    old.wait_for(r"^WRITE ok", timeout=5)
    time.sleep(0.05)  # land the pause between two writes, as a GC pause or a hung VM would
    os.kill(old.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    at, match = new.wait_for(r"^LEADER role=\S+ epoch=(\d+)", timeout=TTL + 3, after=stopped_at)
    assert int(match.group(1)) == epoch + 1
    new.wait_for(r"^WRITE ok", timeout=2, after=at)

    # Watch the checkpoint from the takeover on: only the new epoch may ever be seen.
    seen: list[tuple[int, dict]] = []
    watching = threading.Event()
    watching.set()

    def watch():
        try:
            while watching.is_set():
                row = SingletonCheckpoint.objects.values_list("epoch", "value").get(name=contenders.role)
                seen.append(row)
                time.sleep(0.01)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        time.sleep(0.2)
        resumed_at = time.monotonic()
        os.kill(old.pid, signal.SIGCONT)
        old.wait_for(r"^STEPPED DOWN", timeout=TTL + 3, after=resumed_at)
        old.wait_for(r"^STANDBY", timeout=2, after=resumed_at)
        time.sleep(0.5)
    finally:
        watching.clear()
        watcher.join(5)

    after_resume = old.text(resumed_at)
    # Nothing the old leader tried after waking up was committed: the fence refused its
    # next write (or, had the pause caught it inside a transaction, the server ended that
    # transaction), and it stepped down. A pause that lands between a write's commit and
    # the line saying so prints that one line after waking, first: that write was committed
    # before the takeover (the watcher below sees only the new epoch in the checkpoint).
    late = [line for line in after_resume if line.startswith("WRITE ok")]
    assert len(late) <= 1 and (not late or after_resume[0] == late[0]), old.report()
    assert any(
        line.startswith("WRITE refused") or "renew refused" in line or "database error" in line for line in after_resume
    ), old.report()
    assert not _leaders(old, resumed_at), old.report()
    assert len(seen) > 20
    assert {epoch_seen for epoch_seen, _ in seen} == {epoch + 1}, seen
    assert {value["holder"] for _, value in seen} == {new.holder}
    counts = [value["n"] for _, value in seen]
    assert counts == sorted(counts)
    lease = Lease.objects.get(name=contenders.role)
    assert (lease.holder, lease.epoch) == (new.holder, epoch + 1)
    refused = [line for line in after_resume if line.startswith("WRITE refused")]
    print("old leader after SIGCONT:", refused[:1] or after_resume[:2])


# --- the same logic on SQLite ----------------------------------------------------------------


@pytest.mark.skipif(os.environ.get("SQLITE_ONLY") is not None, reason="already the SQLite run")
def test_same_tests_pass_on_sqlite(tmp_path):
    """Embedded mode runs on SQLite: the unit tests again, on a SQLite file database (one
    that real processes could share: ``-k kill_9`` with these settings runs the failover
    test on SQLite too)."""
    pytest_on_sqlite(tmp_path, __file__, "--nomigrations", "-k", "unit", timeout=120)
