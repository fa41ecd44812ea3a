"""Price alerts: creating and removing them, and the watcher that evaluates every tick.

A tick is a realtime update: an engine runner's trade (``trades:<SYMBOL>``, each trade's
price is the symbol's last price) or a feed's index print (``index:<UNDERLYING>``). In
embedded mode the watcher is a thread of the one process where the engines and the feed
are threads too, and ``trading.realtime``'s tap hands it their updates; in stack mode
``manage.py run_alerts`` hears them on the channel layer. The watcher keeps every active
alert in an ``AlertBook`` (sorted thresholds, ``notifications.alerts``) loaded from the
database, and catches up with creations and removals when ``ALERTS_CHANGED`` moves.

Firing is decided twice: the book says which alerts the tick reaches, then one transaction
re-checks each against its row (still active; out of its cooldown or minute) while it
writes the firing, so a deleted alert, or a second evaluator, never makes a second message.
The notifications of one tick are one ``notify_many`` (a bulk insert), each with the
firing's dedupe key; the user's preferences choose the channels, as for every kind.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F

from marketdata.models import Candle, CandleSource, IndexPrint, Instrument, InstrumentKind
from marketdata.services import UNDERLYINGS
from trading.errors import Conflict, NotFound, ValidationFailed
from trading.formatting import decimal_string, utc_string
from trading.money import parse_decimal
from trading.pgarrays import array_literal
from trading.realtime import add_tap

from . import alerts as core
from .models import PriceAlert, PriceAlertStatus
from .services import Message, notify_many

logger = logging.getLogger(__name__)

KIND = "price_alert"
INDEX_PREFIX = "index:"
ALERTS_CHANGED = "price_alerts:changed"  # cache key: bumped after each creation or removal
REFRESH_OVERLAP = timedelta(seconds=5)  # rows saved before a late commit are read again
REFRESH_EVERY = 10.0  # seconds: read changes even if a bump was lost (Redis away)
MAX_CHANGE_PCT = Decimal(1000)


class AlertLimitReached(Conflict):
    code = "alert_limit_reached"


# --- symbols ------------------------------------------------------------------------------


def alert_symbols() -> dict[str, Decimal]:
    """Every symbol an alert can watch, with the step its prices take: each active spot pair
    (its tick size) and each index (the tick of its USDT pair)."""
    ticks = dict(Instrument.objects.filter(kind=InstrumentKind.SPOT, active=True).values_list("symbol", "tick_size"))
    symbols = dict(ticks)
    for underlying in UNDERLYINGS:
        step = ticks.get(f"{underlying}-USDT")
        if step is not None:
            symbols[f"{INDEX_PREFIX}{underlying}"] = step
    return symbols


# --- create / delete ----------------------------------------------------------------------


@dataclass(frozen=True)
class AlertInput:
    symbol: str
    condition: str
    value: Decimal
    frequency: str
    window: str


def price_alert_validate(*, symbol, condition, value, frequency, window=None) -> AlertInput:
    """The alert as it will be stored, or a ``validation_error`` naming the bad field."""
    symbols = alert_symbols()
    if not isinstance(symbol, str) or symbol not in symbols:
        known = ", ".join(sorted(symbols))
        raise ValidationFailed(f"Unknown symbol {symbol!r}.", fields={"symbol": [f"One of: {known}."]})
    if condition not in core.CONDITIONS:
        raise ValidationFailed("Unknown condition.", fields={"condition": [f"One of: {', '.join(core.CONDITIONS)}."]})
    if frequency not in core.FREQUENCIES:
        raise ValidationFailed("Unknown frequency.", fields={"frequency": [f"One of: {', '.join(core.FREQUENCIES)}."]})
    if condition == core.CHANGE_PCT:
        if window not in core.WINDOWS:
            raise ValidationFailed(
                "A change alert needs its window.", fields={"window": [f"One of: {', '.join(core.WINDOWS)}."]}
            )
        number = parse_decimal(value, field="value", places=2, signed=True)
        if number == 0 or abs(number) > MAX_CHANGE_PCT:
            raise ValidationFailed(
                "value is a move in percent: positive for a rise, negative for a fall.",
                fields={"value": [f"Not zero, at most {MAX_CHANGE_PCT} either way."]},
            )
        return AlertInput(symbol, condition, number, frequency, window)
    if window not in (None, ""):
        raise ValidationFailed("Only a change alert has a window.", fields={"window": ["Leave it out."]})
    number = parse_decimal(value, field="value", step=symbols[symbol], what="tick size")
    return AlertInput(symbol, condition, number, frequency, "")


def price_alert_create(*, user, symbol, condition, value, frequency, window=None) -> PriceAlert:
    spec = price_alert_validate(symbol=symbol, condition=condition, value=value, frequency=frequency, window=window)
    limit = settings.PRICE_ALERTS_MAX_ACTIVE
    with transaction.atomic(durable=True):
        # the trader's row orders concurrent creations, so the limit holds under a burst
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        active = PriceAlert.objects.filter(user=user, status=PriceAlertStatus.ACTIVE).count()
        if active >= limit:
            raise AlertLimitReached(f"You have {active} active alerts: at most {limit}. Delete one first.")
        alert = PriceAlert.objects.create(
            user=user,
            symbol=spec.symbol,
            condition=spec.condition,
            value=spec.value,
            window=spec.window,
            frequency=spec.frequency,
        )
        transaction.on_commit(alerts_changed)
    return alert


def price_alert_delete(*, user, alert_id: int) -> None:
    with transaction.atomic(durable=True):
        alert = (
            PriceAlert.objects.select_for_update()
            .filter(user=user, pk=alert_id)
            .exclude(status=PriceAlertStatus.DELETED)
            .first()
        )
        if alert is None:
            raise NotFound("Alert not found.")
        alert.status = PriceAlertStatus.DELETED
        alert.save(update_fields=["status", "updated_at"])
        transaction.on_commit(alerts_changed)


def alerts_changed() -> None:
    """Tell every watcher to read the alerts again (after the commit that changed them)."""
    try:
        cache.set(ALERTS_CHANGED, time.time_ns(), timeout=None)
    except Exception:  # the periodic refresh catches up without it
        logger.warning("price alerts: could not announce a change", exc_info=True)
    for watcher in list(_watchers):
        watcher.poke()


# --- firing -------------------------------------------------------------------------------


def _stamp(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


def _message(firing: core.Firing, price: str, value: str) -> tuple[str, str]:
    alert = firing.alert
    if alert.condition == core.PRICE_ABOVE:
        return f"{alert.symbol} is at or above {value}", f"The price is {price}; your alert was set at {value}."
    if alert.condition == core.PRICE_BELOW:
        return f"{alert.symbol} is at or below {value}", f"The price is {price}; your alert was set at {value}."
    return (
        f"{alert.symbol} moved {_pct(firing.change)}% in {alert.window}",
        f"The price is {price}; your alert was set for {value}% over {alert.window}.",
    )


def _pct(change: Decimal) -> str:
    return decimal_string(change.quantize(Decimal("0.01")))


def _claim_rows(firings: list[core.Firing], cooldown: float) -> list[tuple[core.Firing, int]]:
    """Mark as fired the alerts whose rows still allow it (active, out of their cooldown or
    minute): [(firing, owner id)]. In the caller's transaction; rows locked in pk order."""
    by_id = {f.alert.id: f for f in firings}
    rows = (
        PriceAlert.objects.select_for_update()
        .filter(pk__in=sorted(by_id), status=PriceAlertStatus.ACTIVE)
        .order_by("pk")
        .values_list("pk", "user_id", "last_fired_at")
    )
    fired, groups = [], {}
    for alert_id, user_id, last in rows:
        firing = by_id[alert_id]
        if last is not None:
            ready = core.next_ready(firing.alert, last.timestamp(), cooldown)
            if ready is None or ready > firing.at:
                continue  # fired meanwhile (another evaluator, or before a restart)
        fired.append((firing, user_id))
        once = firing.alert.frequency == core.ONCE
        groups.setdefault((firing.at, firing.price, once), []).append(alert_id)
    for (at, price, once), ids in groups.items():
        changes = {"fire_count": F("fire_count") + 1, "last_fired_at": _stamp(at), "last_fired_price": price}
        if once:
            changes["status"] = PriceAlertStatus.TRIGGERED
        PriceAlert.objects.filter(pk__in=ids).update(**changes)
    return fired


def _claim_pg(firings: list[core.Firing], cooldown: float) -> list[tuple[core.Firing, int]]:
    """``_claim_rows`` in one statement per tick and frequency: the ids go as one array, the
    rows are locked in pk order and the check and the write are one UPDATE ... RETURNING."""
    table = PriceAlert._meta.db_table
    groups: dict[tuple, list[core.Firing]] = {}
    for firing in firings:
        groups.setdefault((firing.alert.frequency, firing.at, firing.price), []).append(firing)
    fired = []
    with connection.cursor() as cursor:
        for (frequency, at, price), group in groups.items():
            by_id = {f.alert.id: f for f in group}
            if frequency == core.ONCE:
                guard, params = "", []
            elif frequency == core.EVERY_TIME:
                guard, params = "AND (last_fired_at IS NULL OR last_fired_at <= %s)", [_stamp(at - cooldown)]
            else:  # once per minute: not yet in this minute
                guard, params = "AND (last_fired_at IS NULL OR last_fired_at < %s)", [_stamp(at // 60 * 60)]
            status = PriceAlertStatus.TRIGGERED if frequency == core.ONCE else PriceAlertStatus.ACTIVE
            cursor.execute(
                f"WITH claimed AS (SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) AND status = %s {guard}"
                f" ORDER BY id FOR UPDATE)"
                f" UPDATE {table} AS a SET fire_count = a.fire_count + 1, last_fired_at = %s,"
                f" last_fired_price = %s, status = %s FROM claimed WHERE a.id = claimed.id"
                f" RETURNING a.id, a.user_id",
                [array_literal(sorted(by_id), "bigint"), PriceAlertStatus.ACTIVE, *params, _stamp(at), price, status],
            )
            fired.extend((by_id[alert_id], user_id) for alert_id, user_id in cursor.fetchall())
    return fired


def alerts_fire(firings: list[core.Firing], *, cooldown: float) -> list[int]:
    """Record the firings that still hold against their rows and notify their owners in
    one transaction (the notifications one bulk insert); returns the notification ids.
    A tick delivered twice finds its alerts fired already, and its keys told."""
    if not firings:
        return []
    by_id = {f.alert.id: f for f in firings}  # one drain fires an alert at most once
    with transaction.atomic(durable=True):
        claim = _claim_pg if connection.vendor == "postgresql" else _claim_rows
        fired = claim(list(by_id.values()), cooldown)
        messages, texts = [], {}  # a tick's price and time are written once, not per alert
        for firing, user_id in fired:
            alert = firing.alert
            tick = texts.get((firing.price, firing.at))
            if tick is None:
                tick = texts[(firing.price, firing.at)] = (decimal_string(firing.price), utc_string(_stamp(firing.at)))
            price, value = tick[0], decimal_string(alert.value)
            title, body = _message(firing, price, value)
            data = {
                "alert_id": alert.id,
                "symbol": alert.symbol,
                "condition": alert.condition,
                "value": value,
                "price": price,
                "at": tick[1],
            }
            if firing.change is not None:
                data["change_pct"] = _pct(firing.change)
            messages.append(
                Message(user_id=user_id, kind=KIND, title=title, body=body, dedupe_key=firing.key, data=data)
            )
        return notify_many(messages)


# --- the watcher --------------------------------------------------------------------------

_watchers: list[AlertWatcher] = []


def ticks_of(updates) -> list[tuple[str, str, str | None]]:
    """The prices in a batch of realtime updates: ``(symbol, price, time)`` of each trade
    (the symbol's last price) and of each fresh index print (``index:BTC``)."""
    ticks = []
    for topic, payload in updates:
        if topic.startswith("trades:"):
            ticks.append((topic[7:], payload.get("price"), payload.get("time")))
        elif topic.startswith("index:"):
            data = payload.get("data") or {}
            if not data.get("stale") and data.get("price") is not None:
                ticks.append((topic, data["price"], data.get("time")))
    return ticks


def _tap(updates: list[tuple[str, dict]]) -> None:
    if not _watchers:
        return
    ticks = ticks_of(updates)
    if ticks:
        for watcher in list(_watchers):
            watcher.offer(ticks)


add_tap(_tap)


def _tick_time(text: str | None) -> float:
    if text:
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    return time.time()


def seed_history(history: core.PriceHistory, *, now: float | None = None) -> None:
    """Fill each index's windows from what the feed stored, so a change over 5m, 1h or 24h
    is measured from the first tick after a (re)start: the index's 1-minute candles for the
    day and its prints for the last minutes. A spot pair's last price has no stored history
    to read: its windows fill as its trades come."""
    now = time.time() if now is None else now
    day_start = _stamp(now - core.WINDOWS["24h"] - 120)
    recent = _stamp(now - core.WINDOWS["5m"] - 60)
    for underlying in UNDERLYINGS:
        samples = [
            (open_time.timestamp() + 59.999, close)  # a minute's close: its last price
            for open_time, close in Candle.objects.filter(
                symbol=f"{underlying}-USDT",
                source=CandleSource.INDEX,
                interval="1m",
                open_time__gte=day_start,
                open_time__lt=recent,
            ).values_list("open_time", "close")
        ]
        samples += [
            (ts.timestamp(), price)
            for ts, price in IndexPrint.objects.filter(
                underlying=underlying, stale=False, price__isnull=False, ts__gte=recent, ts__lte=_stamp(now)
            ).values_list("ts", "price")
        ]
        for at, price in sorted(samples):
            history.record(f"{INDEX_PREFIX}{underlying}", price, at)


def _as_core(row: PriceAlert) -> core.Alert:
    return core.Alert(
        id=row.pk,
        symbol=row.symbol,
        condition=row.condition,
        value=row.value,
        frequency=row.frequency,
        window=row.window or None,
    )


class AlertWatcher:
    """Every active alert in memory, fed the ticks this process publishes.

    ``listen()`` starts taking ticks, ``drain()`` evaluates what arrived and fires (the test
    and the thread call the same), ``run()`` drains for the life of the process."""

    def __init__(self, *, cooldown: float | None = None):
        self.cooldown = settings.PRICE_ALERTS_COOLDOWN_SECONDS if cooldown is None else cooldown
        self.book: core.AlertBook | None = None
        self.ticks: queue.SimpleQueue = queue.SimpleQueue()
        self.wakeup = threading.Event()
        self.refresh_due = True
        self.synced_from: datetime | None = None
        self.seen_change = None
        self.next_refresh = 0.0
        self.fired = 0

    def listen(self) -> AlertWatcher:
        _watchers.append(self)
        return self

    def close(self) -> None:
        if self in _watchers:
            _watchers.remove(self)

    def offer(self, ticks: list[tuple[str, str, str | None]]) -> None:
        for tick in ticks:
            self.ticks.put(tick)
        self.wakeup.set()

    def poke(self) -> None:
        self.refresh_due = True
        self.wakeup.set()

    def load(self) -> None:
        """Every active alert, from the database (on start)."""
        self.synced_from = datetime.now(tz=UTC) - REFRESH_OVERLAP
        self.book = core.AlertBook(cooldown=self.cooldown)
        seed_history(self.book.history)
        for row in PriceAlert.objects.filter(status=PriceAlertStatus.ACTIVE).iterator(chunk_size=5000):
            self._add(row)
        self.refresh_due = False
        self.next_refresh = time.monotonic() + REFRESH_EVERY

    def refresh(self) -> None:
        """Catch up with alerts created, removed or fired elsewhere since the last read."""
        started = datetime.now(tz=UTC)
        for row in PriceAlert.objects.filter(updated_at__gte=self.synced_from).order_by("pk"):
            if row.status == PriceAlertStatus.ACTIVE:
                self._add(row)
            else:
                self.book.remove(row.pk)
        self.synced_from = started - REFRESH_OVERLAP
        self.refresh_due = False
        self.next_refresh = time.monotonic() + REFRESH_EVERY

    def _add(self, row: PriceAlert) -> None:
        alert = _as_core(row)
        ready = None
        if row.last_fired_at is not None:
            ready = core.next_ready(alert, row.last_fired_at.timestamp(), self.cooldown)
        self.book.add(alert, ready_at=ready)

    def _changed_elsewhere(self) -> bool:
        try:
            change = cache.get(ALERTS_CHANGED)
        except Exception:
            return False
        if change != self.seen_change:
            self.seen_change = change
            return True
        return False

    def drain(self) -> int:
        """Evaluate every tick waiting, fire what they reach; returns how many fired."""
        if self.book is None:
            self.load()
        elif self.refresh_due or self._changed_elsewhere() or time.monotonic() >= self.next_refresh:
            self.refresh()
        firings = []
        while True:
            try:
                symbol, price, at = self.ticks.get_nowait()
            except queue.Empty:
                break
            try:
                number = Decimal(price)
            except (TypeError, ArithmeticError):
                continue
            firings.extend(self.book.tick(symbol, number, _tick_time(at)))
        written = alerts_fire(firings, cooldown=self.cooldown)
        self.fired += len(written)
        return len(written)

    def run(self) -> None:
        while True:
            self.wakeup.wait(1.0)
            self.wakeup.clear()
            try:
                self.drain()
            except Exception:  # the next round reloads from the database, on a new connection
                logger.exception("price alerts: a round failed; reloading the alerts")
                self.book = None
                connection.close()
                time.sleep(1.0)


def run_watcher() -> None:
    """The embedded mode's alert thread (registered with ``trading.workers``)."""
    AlertWatcher().listen().run()
