"""Price alert evaluation: which alerts one price tick fires (plain Python, no Django).

Per symbol the book keeps each condition's thresholds sorted, so a tick costs a few binary
searches plus the alerts it fires, never a pass over every alert:

* ``price_above`` fires when the price is at or above its value: the prefix of the
  ascending thresholds up to the price;
* ``price_below`` fires when the price is at or below its value: the suffix from the price;
* ``change_pct`` fires when the move since the window's start (5m, 1h, 24h) reaches its
  value in percent, up for a positive value, down for a negative one: per window the rises
  and the falls are sorted the same way against the move.

A repeating alert that fired leaves the sorted thresholds until it may fire again (a heap
ordered by that time), so a price that stays beyond its threshold does not cost a look at it
on every tick: ``every_time`` waits ``cooldown`` seconds, ``once_per_minute`` the start of the
next minute. ``once`` leaves the book for good.

``ScanBook`` is the same contract evaluated by a pass over every alert: the reference the
property tests hold the sorted book to, and the baseline of ``bench/alerts.py``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from sortedcontainers import SortedList

PRICE_ABOVE = "price_above"
PRICE_BELOW = "price_below"
CHANGE_PCT = "change_pct"
CONDITIONS = (PRICE_ABOVE, PRICE_BELOW, CHANGE_PCT)

ONCE = "once"
EVERY_TIME = "every_time"
ONCE_PER_MINUTE = "once_per_minute"
FREQUENCIES = (ONCE, EVERY_TIME, ONCE_PER_MINUTE)

WINDOWS = {"5m": 300, "1h": 3600, "24h": 86400}

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    symbol: str
    condition: str
    value: Decimal
    frequency: str
    window: str | None = None  # change_pct only: a key of WINDOWS


@dataclass(slots=True)  # not frozen: a burst builds thousands, and frozen init is slower
class Firing:
    alert: Alert
    price: Decimal
    at: float  # the tick's own time (Unix seconds): a redelivered tick fires with the same key
    change: Decimal | None = None  # change_pct: the move in percent that fired it

    @property
    def key(self) -> str:
        """The dedupe key of this firing: one notification per alert for ``once``, per
        minute for ``once_per_minute``, per tick time for ``every_time``."""
        alert = self.alert
        if alert.frequency == ONCE:
            return f"price_alert:{alert.id}"
        if alert.frequency == ONCE_PER_MINUTE:
            return f"price_alert:{alert.id}:m{int(self.at // 60)}"
        return f"price_alert:{alert.id}:t{int(self.at * 1000)}"


def next_ready(alert: Alert, at: float, cooldown: float) -> float | None:
    """When an alert that fired at ``at`` may fire again (None: never)."""
    if alert.frequency == ONCE:
        return None
    if alert.frequency == ONCE_PER_MINUTE:
        return (math.floor(at / 60) + 1) * 60.0
    return at + cooldown


class PriceHistory:
    """A small ring of recent prices per window and symbol: enough to know the price at each
    window's start. Samples are kept about ``window / RESOLUTION`` seconds apart, so a ring
    holds a few hundred prices whatever the tick rate."""

    RESOLUTION = 300

    def __init__(self):
        self._rings: dict[tuple[str, str], deque] = {}

    def record(self, symbol: str, price: Decimal, at: float) -> None:
        for name, seconds in WINDOWS.items():
            ring = self._rings.get((symbol, name))
            if ring is None:
                ring = self._rings[(symbol, name)] = deque()
            if not ring or at - ring[-1][0] >= seconds / self.RESOLUTION:
                ring.append((at, price))
            start = at - seconds
            # keep one sample at or before the window's start: that is the base price
            while len(ring) > 1 and ring[1][0] <= start:
                ring.popleft()

    def base(self, symbol: str, window: str, at: float) -> Decimal | None:
        """The price at the start of ``window`` before ``at``; None while the history is
        shorter than the window (a move cannot be measured yet)."""
        ring = self._rings.get((symbol, window))
        if not ring or ring[0][0] > at - WINDOWS[window]:
            return None
        return ring[0][1]


def _take(entries: SortedList, start: int, stop: int) -> list[int]:
    """Remove ``entries[start:stop]`` and return their alert ids."""
    ids = [alert_id for _, alert_id in entries.islice(start, stop)]
    del entries[start:stop]
    return ids


def change_pct(price: Decimal, base: Decimal) -> Decimal:
    return (price - base) * HUNDRED / base


class _Symbol:
    __slots__ = ("above", "below", "falls", "rises")

    def __init__(self):
        self.above = SortedList()  # (value, id)
        self.below = SortedList()
        self.rises = {name: SortedList() for name in WINDOWS}
        self.falls = {name: SortedList() for name in WINDOWS}

    def sorted_for(self, alert: Alert) -> SortedList:
        if alert.condition == PRICE_ABOVE:
            return self.above
        if alert.condition == PRICE_BELOW:
            return self.below
        return (self.rises if alert.value > 0 else self.falls)[alert.window]


class AlertBook:
    """The active alerts of any number of symbols, evaluated tick by tick."""

    def __init__(self, *, cooldown: float):
        self.cooldown = cooldown
        self.alerts: dict[int, Alert] = {}
        self.history = PriceHistory()
        self._symbols: dict[str, _Symbol] = {}
        self._waiting: dict[str, list] = {}  # symbol -> heap of (ready_at, id) of alerts cooling down
        self._ready_at: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.alerts)

    def __contains__(self, alert_id: int) -> bool:
        return alert_id in self.alerts

    def add(self, alert: Alert, *, ready_at: float | None = None) -> None:
        """Start watching ``alert`` (replacing a version already watched); ``ready_at``: the
        time before which it may not fire (a repeating alert that fired recently)."""
        self.remove(alert.id)
        self.alerts[alert.id] = alert
        if ready_at is not None:
            self._wait(alert, ready_at)
        else:
            self._book(alert.symbol).sorted_for(alert).add((alert.value, alert.id))

    def remove(self, alert_id: int) -> None:
        alert = self.alerts.pop(alert_id, None)
        if alert is None:
            return
        if self._ready_at.pop(alert_id, None) is None:
            self._symbols[alert.symbol].sorted_for(alert).remove((alert.value, alert.id))
        # a waiting entry is left in its heap and skipped when it comes up

    def tick(self, symbol: str, price: Decimal, at: float) -> list[Firing]:
        self.history.record(symbol, price, at)
        book = self._symbols.get(symbol)
        if book is None:
            return []
        self._wake(symbol, at)
        # each condition's reached thresholds are one contiguous run of its sorted list:
        # taken out in one slice, then each fired alert waits or leaves
        reached: list[tuple[list, Decimal | None]] = []
        above = book.above
        end = above.bisect_right((price, math.inf))  # sorts after every (price, id): value <= price
        if end:
            reached.append((_take(above, 0, end), None))
        below = book.below
        start = below.bisect_left((price, -1))
        if start < len(below):
            reached.append((_take(below, start, len(below)), None))
        for name in WINDOWS:
            rises, falls = book.rises[name], book.falls[name]
            if not rises and not falls:
                continue
            base = self.history.base(symbol, name, at)
            if base is None:
                continue
            move = change_pct(price, base)
            end = rises.bisect_right((move, math.inf))
            if end:
                reached.append((_take(rises, 0, end), move))
            start = falls.bisect_left((move, -1))
            if start < len(falls):
                reached.append((_take(falls, start, len(falls)), move))
        fired: list[Firing] = []
        alerts, cooldown = self.alerts, self.cooldown
        for ids, move in reached:
            for alert_id in ids:
                alert = alerts[alert_id]
                fired.append(Firing(alert, price, at, move))
                ready = next_ready(alert, at, cooldown)
                if ready is None:
                    del alerts[alert_id]
                else:
                    self._wait(alert, ready)
        return fired

    def _wait(self, alert: Alert, ready_at: float) -> None:
        self._ready_at[alert.id] = ready_at
        heapq.heappush(self._waiting.setdefault(alert.symbol, []), (ready_at, alert.id))
        self._book(alert.symbol)

    def _wake(self, symbol: str, at: float) -> None:
        heap = self._waiting.get(symbol)
        while heap and heap[0][0] <= at:
            ready_at, alert_id = heapq.heappop(heap)
            if self._ready_at.get(alert_id) != ready_at:
                continue  # removed, or re-added with another time, since it was queued
            del self._ready_at[alert_id]
            alert = self.alerts[alert_id]
            self._symbols[symbol].sorted_for(alert).add((alert.value, alert.id))

    def _book(self, symbol: str) -> _Symbol:
        book = self._symbols.get(symbol)
        if book is None:
            book = self._symbols[symbol] = _Symbol()
        return book


def satisfied(alert: Alert, price: Decimal, base: Decimal | None) -> Decimal | bool | None:
    """Whether ``alert``'s condition holds at ``price`` (``base``: its window's start price).
    For change_pct, the move when it holds."""
    if alert.condition == PRICE_ABOVE:
        return price >= alert.value
    if alert.condition == PRICE_BELOW:
        return price <= alert.value
    if base is None:
        return None
    move = change_pct(price, base)
    if move >= alert.value if alert.value > 0 else move <= alert.value:
        return move
    return None


class ScanBook:
    """The same contract as ``AlertBook`` by looking at every alert on every tick."""

    def __init__(self, *, cooldown: float):
        self.cooldown = cooldown
        self.alerts: dict[int, Alert] = {}
        self.history = PriceHistory()
        self._ready_at: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.alerts)

    def add(self, alert: Alert, *, ready_at: float | None = None) -> None:
        self.alerts[alert.id] = alert
        self._ready_at.pop(alert.id, None)
        if ready_at is not None:
            self._ready_at[alert.id] = ready_at

    def remove(self, alert_id: int) -> None:
        self.alerts.pop(alert_id, None)
        self._ready_at.pop(alert_id, None)

    def tick(self, symbol: str, price: Decimal, at: float) -> list[Firing]:
        self.history.record(symbol, price, at)
        fired = []
        for alert in list(self.alerts.values()):
            if alert.symbol != symbol or self._ready_at.get(alert.id, -math.inf) > at:
                continue
            base = self.history.base(symbol, alert.window, at) if alert.condition == CHANGE_PCT else None
            hit = satisfied(alert, price, base)
            if hit is None or hit is False:
                continue
            fired.append(Firing(alert, price, at, hit if alert.condition == CHANGE_PCT else None))
            ready = next_ready(alert, at, self.cooldown)
            if ready is None:
                del self.alerts[alert.id]
            else:
                self._ready_at[alert.id] = ready
        return fired
