"""Leases: the active-standby primitive behind every singleton (engine per symbol, outbox
relay, market feed).

A row per role holds ``holder``, ``epoch`` and ``expires_at``. Acquiring and renewing are
single conditional UPDATEs judged by the *database's* clock, so contenders on different
machines agree on who holds the role. Each new tenure increments the epoch. A singleton's
writes call ``fenced()`` inside their own transaction: it locks the lease row and refuses
(``LeaseLost``) unless the writer still holds the lease with the same epoch. Because a
takeover must update that same row, it waits for any fenced transaction in flight, so a
paused former leader can never commit after its successor took over.

Works on PostgreSQL and on SQLite (where IMMEDIATE transactions serialize the writers and
``select_for_update`` is a no-op).

``Singleton`` runs a ``work(epoch)`` callable while leading and stands by otherwise.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db import Error as DjangoDbError
from django.db.models import BooleanField, Case, ExpressionWrapper, F, Q, Value, When
from django.db.models.functions import Now
from django.db.transaction import TransactionManagementError

from trading.dependencies import MAX_BACKOFF, POSTGRESQL, backoff_delay, dependency, unavailable
from trading.errors import DomainError
from trading.models import Lease, SingletonCheckpoint

logger = logging.getLogger(__name__)

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# A standby must not queue behind a leader's fenced transaction for long: it retries.
_ACQUIRE_LOCK_TIMEOUT_MS = 500
_PG_LOCK_NOT_AVAILABLE = "55P03"


class LeaseLost(DomainError):
    """The writer no longer holds the lease at the epoch it believes it has."""

    status = 409
    code = "lease_lost"


def default_holder() -> str:
    """host:pid:random — unique per process start, readable in ``manage.py leases``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _expiry(ttl: float):
    return Now() + Value(timedelta(seconds=ttl))


def _still_held_by(holder: str) -> Q:
    return Q(holder=holder, expires_at__gt=Now())


def _is_lock_timeout(exc: BaseException) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE


def lease_acquire(*, name: str, holder: str, ttl: float) -> int | None:
    """Take or keep the lease ``name`` for ``ttl`` seconds; return the epoch if ``holder``
    now holds it, else ``None``.

    Re-acquiring a lease one still validly holds keeps its epoch (and extends it); taking a
    free or expired lease — even one's own lapsed lease — starts a new epoch. Opens its own
    transaction."""
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    try:
        with transaction.atomic(durable=True):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{_ACQUIRE_LOCK_TIMEOUT_MS}ms'")
            updated = _acquire_update(name=name, holder=holder, ttl=ttl)
            if not updated and not Lease.objects.filter(name=name).exists():
                # First contender for this role: create the row (a concurrent creator is
                # harmless: ON CONFLICT DO NOTHING / INSERT OR IGNORE), then compete.
                Lease.objects.bulk_create(
                    [Lease(name=name, holder="", epoch=0, expires_at=_NEVER)], ignore_conflicts=True
                )
                updated = _acquire_update(name=name, holder=holder, ttl=ttl)
            if not updated:
                return None
            # Our own UPDATE holds the row lock until commit, so this read is our tenure.
            return Lease.objects.filter(name=name).values_list("epoch", flat=True).get()
    except DatabaseError as exc:
        if _is_lock_timeout(exc):
            return None  # a fenced write is in flight; the role is busy, try again later
        raise


def _acquire_update(*, name: str, holder: str, ttl: float) -> int:
    # One statement: both the condition and the CASEs read the row as it was before the
    # update, so "still mine" and "free or expired" are judged at one instant.
    mine = _still_held_by(holder)
    return Lease.objects.filter(Q(name=name) & (mine | Q(expires_at__lte=Now()))).update(
        holder=holder,
        epoch=Case(When(mine, then=F("epoch")), default=F("epoch") + 1),
        acquired_at=Case(When(mine, then=F("acquired_at")), default=Now()),
        expires_at=_expiry(ttl),
        renewed_at=Now(),
    )


def lease_renew(*, name: str, holder: str, epoch: int, ttl: float) -> bool:
    """Extend a lease one still holds at ``epoch``. ``False`` means it is lost: step down."""
    with transaction.atomic(durable=True):
        return bool(
            Lease.objects.filter(name=name, holder=holder, epoch=epoch, expires_at__gt=Now()).update(
                expires_at=_expiry(ttl), renewed_at=Now()
            )
        )


def lease_release(*, name: str, holder: str, epoch: int) -> bool:
    """Give the lease up now so a standby takes over at once instead of after the TTL."""
    with transaction.atomic(durable=True):
        return bool(
            Lease.objects.filter(name=name, holder=holder, epoch=epoch, expires_at__gt=Now()).update(expires_at=Now())
        )


def lease_fence(*, name: str, epoch: int, holder: str) -> None:
    """Lock the lease row and raise ``LeaseLost`` unless ``holder`` still holds it at
    ``epoch``. Needs the caller's transaction: the lock must last until its commit."""
    if not connection.in_atomic_block:
        raise TransactionManagementError("fenced writes must run inside the writer's transaction")
    row = (
        Lease.objects.select_for_update()
        .filter(name=name)
        .annotate(valid=ExpressionWrapper(Q(expires_at__gt=Now()), output_field=BooleanField()))
        .values("holder", "epoch", "valid")
        .first()
    )
    if row is None:
        raise LeaseLost(f"lease {name!r} does not exist", fields={"lease": name})
    if row["holder"] != holder or row["epoch"] != epoch:
        raise LeaseLost(
            f"lease {name!r} is held by {row['holder']!r} at epoch {row['epoch']}, not by {holder!r} at epoch {epoch}",
            fields={"lease": name, "epoch": row["epoch"]},
        )
    if not row["valid"]:
        raise LeaseLost(f"lease {name!r} epoch {epoch} has expired", fields={"lease": name, "epoch": epoch})


@contextmanager
def fenced(name: str, epoch: int, holder: str) -> Iterator[None]:
    """``with transaction.atomic(durable=True), fenced(name, epoch, holder): <writes>`` —
    the writes commit only if this holder still holds the lease at this epoch."""
    lease_fence(name=name, epoch=epoch, holder=holder)
    yield


def checkpoint_write(*, name: str, epoch: int, holder: str, value: Any) -> None:
    """Fenced write of a singleton's checkpoint inside the caller's transaction (say, with
    the relay's other writes). Needs a transaction."""
    lease_fence(name=name, epoch=epoch, holder=holder)
    stored = SingletonCheckpoint.objects.select_for_update().filter(name=name).values_list("epoch", flat=True).first()
    if stored is not None and stored > epoch:
        raise LeaseLost(f"checkpoint {name!r} was written at epoch {stored} > {epoch}", fields={"lease": name})
    SingletonCheckpoint.objects.update_or_create(name=name, defaults={"epoch": epoch, "value": value})


def checkpoint_save(*, name: str, epoch: int, holder: str, value: Any) -> None:
    """Fenced write of a singleton's checkpoint in its own transaction."""
    with transaction.atomic(durable=True):
        checkpoint_write(name=name, epoch=epoch, holder=holder, value=value)


def checkpoint_load(name: str, default: Any = None) -> Any:
    """The last value a leader of ``name`` saved (what a new leader resumes from)."""
    row = SingletonCheckpoint.objects.filter(name=name).values_list("value", flat=True).first()
    return default if row is None else row


def bound_idle_transactions(seconds: float) -> None:
    """On PostgreSQL, have the server end this connection if it sits idle inside a
    transaction for longer than ``seconds`` (the TTL). A leader paused mid-transaction (a
    SIGSTOP, a long GC, a hung VM) holds the lease row lock, which would keep every standby
    out until it woke up; this way its transaction dies and a standby takes over."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {max(1, round(seconds * 1000))}")


class Singleton:
    """Active-standby runner for one role.

    ``run()`` loops: stand by and try to acquire every ``ttl/5`` (at most 0.25 s); once leading, call
    ``on_lead(epoch)``, then ``work(epoch)`` repeatedly (every ``interval`` seconds, or at
    once again if it returned a truthy "more to do"), renewing every ``ttl/3``. ``work``
    does its writes through ``fenced``/``checkpoint_save``; it must return well within the
    TTL. A failed renew or a ``LeaseLost`` steps down (``on_step_down(epoch, reason)``)
    and goes back to standby. A database error or PostgreSQL out of reach steps down (the
    work's in-memory state may no longer match the database) and re-takes the lease once
    it answers; Redis or the broker out of reach keeps the lease and calls ``on_lead``
    again before the next round. Either way it backs off (capped at ``max_backoff``,
    jittered) and retries — the loop never dies of an outage, and logs it once when it
    starts and once when it ends (``trading.dependencies``). Any other exception releases
    the lease and propagates. SIGTERM/SIGINT (when
    run in the main thread) or ``stop()`` end the loop and release the lease.
    """

    def __init__(
        self,
        name: str,
        *,
        work: Callable[[int], Any],
        ttl: float = 3.0,
        interval: float | None = None,
        on_lead: Callable[[int], Any] | None = None,
        on_step_down: Callable[[int, str], Any] | None = None,
        holder: str | None = None,
        announce: Callable[[str], Any] | None = None,
        handle_signals: bool | None = None,
        max_backoff: float = MAX_BACKOFF,
    ):
        self.name = name
        self.work = work
        self.ttl = ttl
        self.interval = ttl / 10 if interval is None else interval
        self.on_lead = on_lead
        self.on_step_down = on_step_down
        self.holder = holder or default_holder()
        self.announce = announce if announce is not None else (lambda line: print(line, flush=True))
        self.handle_signals = handle_signals
        self.max_backoff = max_backoff
        self.renew_every = ttl / 3
        # A released lease (a leader stopping for a deploy) is taken at the next poll: at
        # most a quarter of a second away whatever the TTL, so the standby leads within a second.
        self.standby_poll = min(ttl / 5, 0.25)
        self.epoch: int | None = None
        self._rebuild = False  # the last round failed part-way: on_lead again before the next
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._quitted = threading.Event()

    # -- control ------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.epoch is not None

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Cut the current wait short (new work arrived)."""
        self._wake.set()

    def _signalled(self) -> None:
        self.stop()
        threading.Thread(target=self._release_soon, name=f"release-{self.name}", daemon=True).start()

    def _release_soon(self, grace: float = 0.3) -> None:
        """SIGTERM (a deploy): the standby must lead within a second. The loop releases the
        lease as it ends, but a round of work in flight (a monitor round waiting on its probes)
        can outlast that: then the lease is released from here, on a connection of its own.
        The round's fenced writes are refused from then on (``LeaseLost``) and the successor
        does that work again, as after any lost lease."""
        if self._quitted.wait(grace):
            return
        epoch = self.epoch
        if epoch is None:
            return
        try:
            if lease_release(name=self.name, holder=self.holder, epoch=epoch):
                self._say(f"RELEASED role={self.name} epoch={epoch} (stopping)")
        except Exception:  # best effort: the loop releases it too, or it expires
            logger.exception("could not release lease %s", self.name)
        finally:
            connection.close()

    def _say(self, line: str, level: int = logging.INFO) -> None:
        logger.log(level, line)
        self.announce(line)

    # -- loop -----------------------------------------------------------------------------
    def run(self) -> None:
        handle = self.handle_signals
        if handle is None:
            handle = threading.current_thread() is threading.main_thread()
        previous = {}
        if handle:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda signum, frame: self._signalled())
        self._say(f"STANDBY role={self.name} holder={self.holder}")
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    if self.epoch is None:
                        self._standby_step()
                    else:
                        self._leader_step()
                except LeaseLost as exc:
                    self._step_down(f"lease lost ({exc.message})")
                except Exception as exc:
                    failures += 1
                    if not self._ride_out(exc, backoff_delay(failures, cap=self.max_backoff)):
                        raise
                else:
                    failures = 0
        except BaseException:
            self._quit("crashed")
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self._quit("stopped")

    def _ride_out(self, exc: Exception, delay: float) -> bool:
        """After a step failed: if a dependency is unreachable (PostgreSQL, Redis, the
        broker) or the database refused the step, wait ``delay`` and go on (True). Any other
        error is a bug: False, and it propagates.

        The work's in-memory state may no longer match what was committed. After a database
        error the singleton steps down (leading again rebuilds it). With Redis or the broker
        away the lease, which lives in PostgreSQL, is kept (renewed meanwhile) and ``on_lead``
        rebuilds the state before the next round."""
        service = unavailable(exc)
        database = isinstance(exc, DjangoDbError)
        if service is None and not database:
            return False
        if service is not None:
            dependency(service).failed(exc)  # says so once per outage, not once per retry
        else:
            self._say(
                f"DATABASE ERROR role={self.name}: {type(exc).__name__}: {exc}; retrying in {delay:.1f}s",
                logging.WARNING,
            )
        if database or service == POSTGRESQL:
            if self.epoch is not None:
                self._step_down(f"{service} unreachable" if service else "database error")
            self._reset_connection()
        elif self.epoch is not None:
            self._rebuild = True
            self._keep_lease()
        self._stop.wait(delay)
        return True

    def _keep_lease(self) -> None:
        if time.monotonic() - self._renewed_at < self.renew_every:
            return
        try:
            if lease_renew(name=self.name, holder=self.holder, epoch=self.epoch, ttl=self.ttl):
                self._renewed_at = time.monotonic()
            else:
                self._step_down("lease lost (renew refused)")
        except DjangoDbError as exc:
            if unavailable(exc) == POSTGRESQL:
                dependency(POSTGRESQL).failed(exc)
            self._step_down("database error")
            self._reset_connection()

    def _standby_step(self) -> None:
        epoch = lease_acquire(name=self.name, holder=self.holder, ttl=self.ttl)
        dependency(POSTGRESQL).ok()  # it answered (now, not after the wait below)
        if epoch is None:
            self._stop.wait(self.standby_poll)
            return
        self.epoch = epoch
        self._rebuild = False
        self._renewed_at = time.monotonic()
        self._guard_connection()
        self._say(f"LEADER role={self.name} epoch={epoch} holder={self.holder}")
        if self.on_lead:
            self.on_lead(epoch)

    def _leader_step(self) -> None:
        self._guard_connection()
        if self._rebuild and self.on_lead:
            self.on_lead(self.epoch)
        self._rebuild = False
        more = self.work(self.epoch)
        if time.monotonic() - self._renewed_at >= self.renew_every:
            if not lease_renew(name=self.name, holder=self.holder, epoch=self.epoch, ttl=self.ttl):
                self._step_down("lease lost (renew refused)")
                return
            self._renewed_at = time.monotonic()
        dependency(POSTGRESQL).ok()  # the work reads or writes the role's tables
        if not more:
            wait = min(self.interval, max(0.0, self.renew_every - (time.monotonic() - self._renewed_at)))
            self._wake.wait(wait)
            self._wake.clear()

    def _step_down(self, reason: str) -> None:
        epoch, self.epoch = self.epoch, None
        self._say(f"STEPPED DOWN role={self.name} epoch={epoch}: {reason}", logging.WARNING)
        if self.on_step_down:
            try:
                self.on_step_down(epoch, reason)
            except Exception:
                logger.exception("on_step_down failed for %s", self.name)
        if not self._stop.is_set():
            self._say(f"STANDBY role={self.name} holder={self.holder}")

    def _quit(self, why: str) -> None:
        self._quitted.set()
        if self.epoch is not None:
            epoch = self.epoch
            try:
                lease_release(name=self.name, holder=self.holder, epoch=epoch)
            except Exception:  # best effort: the lease expires by itself anyway
                logger.exception("could not release lease %s", self.name)
            self._stop.set()
            self._step_down(f"{why}, lease released")
        self._say(f"STOPPED role={self.name} holder={self.holder}")

    def _guard_connection(self) -> None:
        connection.ensure_connection()
        raw = connection.connection
        if getattr(self, "_guarded", None) is not raw:
            bound_idle_transactions(self.ttl)
            self._guarded = raw

    @staticmethod
    def _reset_connection() -> None:
        try:
            connection.close()
        except Exception:
            logger.debug("closing a broken connection failed", exc_info=True)
