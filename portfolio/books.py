"""The replayed book of each trader, kept in the cache and extended with only what is new.

A book (``core.Book``, per trader and method) is the replay of the trader's whole history
(``history``). Kept in the cache with where its history stops: the last ledger transfer it
booked (created_at, id), the option orders and exercises it booked (count and last id), and
the sums of the transfers it booked per account.

A request first reads the trader's *facts* in one query: their accounts' posted counters
(every posted transfer adds its amount to them) and their option counts. Equal to what the
cached book was checked against: nothing happened, and the book's small *head* (per asset:
quantity, open cost, realized PnL; money invested; today's and this session's movements) is
all a valuation reads. Otherwise the transfers from the last one booked on are read and
booked, and the sums must then equal the counters, read again after them. A transfer that
committed late with an earlier time (two engines' batches for one trader, say) shows as a
difference, and the book is replayed from the start: the cached book always equals a replay
of the whole history.

Stored in parts so that booking one fill does not rewrite a long history: the state (open
lots and the cursors), the head, and the disposals in chunks of ``CHUNK`` (only the last
chunk is rewritten as disposals are added).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from ledger.models import AccountKind, LedgerAccount
from orders.options.models import OptionExercise, OptionOrder
from trading.money import ASSETS

from . import core, history

VERSION = 2  # 2: each disposal says when the lots it used were acquired
CACHE_SECONDS = 7 * 24 * 3600
CHUNK = 256  # disposals per cache entry
SESSION_HOUR = 8  # options expire, and their trading day turns, at 08:00 UTC
_RECENT = timedelta(days=2)  # how far back the head keeps each day's and session's movements
ZERO = Decimal(0)


def cache_enabled() -> bool:
    """Off only to measure what the cache saves (bench/portfolio.py)."""
    return settings.PORTFOLIO_BOOK_CACHE


def session_start(moment: datetime) -> datetime:
    """The options session ``moment`` is in: from the last 08:00 UTC."""
    moment = moment.astimezone(UTC)
    start = datetime.combine(moment.date(), time(SESSION_HOUR), tzinfo=UTC)
    return start if moment >= start else start - timedelta(days=1)


# --- what the ledger says now --------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """One trader's accounts (posted counters and holds) and option counts (count and last id
    of their orders and of their exercises), read in one statement."""

    accounts: dict[int, str]  # account id -> asset
    counters: dict[int, tuple[Decimal, Decimal]]  # account id -> (debits_posted, credits_posted)
    held: dict[str, Decimal]  # asset -> debits_pending
    options: tuple[int, int, int, int]

    @property
    def fingerprint(self) -> tuple:
        return (tuple(sorted(self.counters.items())), self.options)

    def balance(self, asset: str) -> Decimal:
        """The ledger balance: credits posted − debits posted (available + held)."""
        for pk, account_asset in self.accounts.items():
            if account_asset == asset:
                debits, credits = self.counters[pk]
                return credits - debits
        return ZERO


def _facts_sql() -> str:
    orders, exercises = OptionOrder._meta.db_table, OptionExercise._meta.db_table
    return (
        "SELECT c.orders, c.last_order, c.exercises, c.last_exercise, "
        "a.id, a.asset, a.debits_posted, a.credits_posted, a.debits_pending FROM ("
        f"SELECT (SELECT COUNT(*) FROM {orders} WHERE user_id = %s) AS orders, "
        f"(SELECT COALESCE(MAX(id), 0) FROM {orders} WHERE user_id = %s) AS last_order, "
        f"(SELECT COUNT(*) FROM {exercises} WHERE user_id = %s) AS exercises, "
        f"(SELECT COALESCE(MAX(id), 0) FROM {exercises} WHERE user_id = %s) AS last_exercise) c "
        f"LEFT JOIN {LedgerAccount._meta.db_table} a ON a.user_id = %s AND a.kind = %s ORDER BY a.id"
    )


_AMOUNT = LedgerAccount._meta.get_field("debits_posted")


def facts_of(user_id: int) -> Facts:
    with connection.cursor() as cursor:
        cursor.execute(_facts_sql(), [user_id] * 5 + [AccountKind.USER])
        rows = cursor.fetchall()
    accounts, counters, held = {}, {}, {}
    for *_, pk, asset, debits, credits, pending in rows:
        if pk is None:
            continue
        debits, credits, pending = (_AMOUNT.from_db(value, connection) for value in (debits, credits, pending))
        accounts[pk], counters[pk], held[asset] = asset, (debits, credits), pending
    options = tuple(int(value) for value in rows[0][:4])
    return Facts(accounts, counters, held, options)


# --- the state of a book ---------------------------------------------------------------------------------


@dataclass
class Head:
    """What a valuation reads of a book: per asset (and option series) its quantity, open cost
    and realized PnL; the money invested; per recent UTC day the quantities that moved and
    the money brought in less taken out; per recent options session, per series, the
    contracts bought and sold and the USDT paid and received."""

    fingerprint: tuple | None = None
    holdings: dict[str, tuple[Decimal, Decimal, Decimal]] = field(default_factory=dict)
    net_invested: Decimal = ZERO
    days: dict[date, tuple[dict[str, Decimal], Decimal]] = field(default_factory=dict)
    sessions: dict[datetime, dict[str, list[Decimal]]] = field(default_factory=dict)

    def moved_since(self, day: date) -> tuple[dict[str, Decimal], Decimal]:
        """Quantities moved and net flows on ``day`` (today: since 00:00 UTC)."""
        return self.days.get(day, ({}, ZERO))


@dataclass
class State:
    """A replayed book and where its history stops. ``book.disposals`` holds the disposals
    from number ``stored`` on; those before it are in the cache's chunks."""

    method: str
    book: core.Book
    sums: dict[int, list[Decimal]] = field(default_factory=dict)  # account id -> [debits, credits] booked
    cursor: tuple[datetime, str] | None = None  # the last transfer booked
    orders: int = 0  # option orders booked
    last_order: int = 0
    exercises: int = 0  # option exercises booked
    last_exercise: int = 0
    stored: int = 0
    days: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)
    fingerprint: tuple | None = None  # the facts it was found equal to
    version: int = VERSION

    def advance(self, *, user_id: int, accounts: dict[int, str], now: datetime) -> int:
        """Book what happened after the cursor; returns how many events. Raises
        ``core.OutOfOrder`` when something older than what is booked turns up."""
        rows = history.transfers_of(accounts=accounts, after=self.cursor)
        events = history.events_from_transfers(rows, accounts=accounts, user_id=user_id)
        events += history.option_events(user_id=user_id, after_order=self.last_order, after_exercise=self.last_exercise)
        self.book.extend(events)
        for event in events:
            if event.reference.startswith("option_order:"):
                self.orders += 1
                self.last_order = max(self.last_order, int(event.reference.split(":")[1]))
            elif event.reference.startswith("option_exercise:"):
                self.exercises += 1
                self.last_exercise = max(self.last_exercise, int(event.reference.split(":")[1]))
        for _, _, _, amount, debit, credit, _ in rows:
            if debit in accounts:
                self.sums.setdefault(debit, [ZERO, ZERO])[0] += amount
            if credit in accounts:
                self.sums.setdefault(credit, [ZERO, ZERO])[1] += amount
        if rows:
            self.cursor = (rows[-1][6], rows[-1][0])
        self._recent(events, now)
        return len(events)

    def _recent(self, events, now: datetime) -> None:
        horizon = now - _RECENT
        for event in events:
            if event.at < horizon:
                continue
            day = event.at.astimezone(UTC).date()
            moved, flows = self.days.get(day, ({}, ZERO))
            moved[event.asset] = moved.get(event.asset, ZERO) + event.quantity
            self.days[day] = (moved, flows + event.flow)
            if event.asset not in ASSETS:
                line = self.sessions.setdefault(session_start(event.at), {}).setdefault(event.asset, [ZERO] * 4)
                if event.quantity > 0:
                    line[0] += event.quantity
                    line[2] += event.usdt
                else:
                    line[1] -= event.quantity
                    line[3] += event.usdt
        oldest = horizon.astimezone(UTC).date() - timedelta(days=1)
        self.days = {day: value for day, value in self.days.items() if day >= oldest}
        self.sessions = {start: value for start, value in self.sessions.items() if start >= horizon - _RECENT}

    def matches(self, facts: Facts) -> bool:
        """Everything the counters count is booked (the transfers were read before them)."""
        for pk, (debits, credits) in facts.counters.items():
            booked = self.sums.get(pk, (ZERO, ZERO))
            if booked[0] != debits or booked[1] != credits:
                return False
        orders, _, exercises, _ = facts.options
        return self.orders == orders and self.exercises == exercises

    def head(self) -> Head:
        holdings = {asset: (h.quantity, h.cost, h.realized) for asset, h in self.book.holdings.items()}
        return Head(self.fingerprint, holdings, self.book.net_invested, self.days, self.sessions)


def _keys(user_id: int, method: str) -> tuple[str, str, str]:
    base = f"portfolio:v{VERSION}:{user_id}:{method}"
    return f"{base}:state", f"{base}:head", f"{base}:disposals:"


def _store(user_id: int, state: State) -> None:
    """The state, its head and its new disposals into the cache; the state kept is the one
    given (its disposals stay in memory)."""
    state_key, head_key, chunk_key = _keys(user_id, state.method)
    new = state.book.disposals
    entries: dict = {}
    if new:
        first = state.stored // CHUNK
        have = state.stored - first * CHUNK
        chunk = _cached(f"{chunk_key}{first}") if have else []
        if not isinstance(chunk, list) or len(chunk) != have:
            cache.delete(state_key)  # a chunk went missing: the next request replays
            return
        pending = chunk + new
        for n in range(0, len(pending), CHUNK):
            entries[f"{chunk_key}{first + n // CHUNK}"] = pending[n : n + CHUNK]
    book = state.book
    kept = State(
        **{
            **{name: getattr(state, name) for name in State.__dataclass_fields__},
            "book": core.Book(book.method, book.holdings, [], book.net_invested, book.events),
            "stored": state.stored + len(new),
        }
    )
    entries[state_key] = kept
    entries[head_key] = state.head()
    cache.set_many(entries, CACHE_SECONDS)


def _cached(key: str):
    """A cache entry, or None when it is missing or no longer reads back as this code's
    objects (written by an older release: ``VERSION`` is raised when their shape changes)."""
    try:
        return cache.get(key)
    except (AttributeError, ImportError, TypeError, ValueError, EOFError, pickle.UnpicklingError):
        return None


def _load(user_id: int, method: str) -> State | None:
    state = _cached(_keys(user_id, method)[0])
    if not isinstance(state, State) or getattr(state, "version", None) != VERSION or state.method != method:
        return None
    return state


def current(user_id: int, method: str, facts: Facts, *, now: datetime) -> tuple[State, Facts]:
    """The trader's book up to date with the ledger, and the facts it was checked against:
    the cached one as it is, extended, or replayed from the start."""
    cached = cache_enabled()
    state = _load(user_id, method) if cached else None
    if state is not None and state.fingerprint == facts.fingerprint:
        return state, facts
    for attempt in range(3):
        if state is None or attempt == 2:
            state = State(method, core.Book(method))
        try:
            state.advance(user_id=user_id, accounts=facts.accounts, now=now)
        except core.OutOfOrder:
            state = None
            continue
        facts = facts_of(user_id)
        if state.matches(facts):
            state.fingerprint = facts.fingerprint
            if cached:
                _store(user_id, state)
            return state, facts
        # A difference: more happened meanwhile (booked in the next round), or a transfer
        # committed late behind the cursor (the last round replays from the start).
    return state, facts  # still moving under us: this answer is not kept


def head_of(user_id: int, method: str, *, now: datetime) -> tuple[Head, Facts]:
    """The head of the trader's up-to-date book (from the cache when nothing happened)."""
    facts = facts_of(user_id)
    if cache_enabled():
        head = _cached(_keys(user_id, method)[1])
        if isinstance(head, Head) and head.fingerprint == facts.fingerprint:
            return head, facts
    state, facts = current(user_id, method, facts, now=now)
    return state.head(), facts


def book_of(user_id: int, method: str, *, now: datetime, disposals: bool = True) -> core.Book:
    """The trader's whole up-to-date book; without its disposals when ``disposals`` is
    False (the open lots need none of them)."""
    for _ in range(2):
        state, _facts = current(user_id, method, facts_of(user_id), now=now)
        if not disposals or not state.stored:
            return state.book
        _, _, chunk_key = _keys(user_id, method)
        count = -(-state.stored // CHUNK)
        try:
            found = cache.get_many([f"{chunk_key}{n}" for n in range(count)])
        except (AttributeError, ImportError, TypeError, ValueError, EOFError, pickle.UnpicklingError):
            found = {}
        earlier = []
        for n in range(count):
            chunk = found.get(f"{chunk_key}{n}")
            if not isinstance(chunk, list) or len(chunk) != min(CHUNK, state.stored - n * CHUNK):
                break
            earlier += chunk
        else:
            book = state.book
            return core.Book(book.method, book.holdings, earlier + book.disposals, book.net_invested, book.events)
        cache.delete(_keys(user_id, method)[0])  # a chunk went missing or was cut: replay
    state = State(method, core.Book(method))
    state.advance(user_id=user_id, accounts=history.accounts_of(user_id=user_id), now=now)
    return state.book
