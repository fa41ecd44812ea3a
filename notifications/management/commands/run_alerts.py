"""Stack mode's price alert process: the trades and index prints every engine and the feed
publish reach it over the channel layer (the group the web processes' hubs join), and its
watcher evaluates them. Two can run for availability: each firing is claimed on its row, so
a second process never tells twice (it only evaluates twice)."""

from __future__ import annotations

import asyncio
import logging
import threading

from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand

from notifications.alert_services import AlertWatcher, ticks_of
from trading.dependencies import backoff_delay
from trading.realtime import BATCH, GROUP, GROUP_REFRESH_SECONDS, MESSAGE

logger = logging.getLogger(__name__)


async def follow_market(offer, *, on_joined=None) -> None:
    """Hand every price in the realtime group's messages to ``offer``, for ever: re-joins the
    group periodically (membership expires, a restarted Redis forgets it) and after errors."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    loop = asyncio.get_running_loop()
    joined_at, failures = None, 0
    while True:
        try:
            if joined_at is None or loop.time() - joined_at > GROUP_REFRESH_SECONDS:
                await layer.group_add(GROUP, channel)
                if joined_at is None and on_joined is not None:
                    on_joined()
                    on_joined = None
                joined_at = loop.time()
            message = await layer.receive(channel)
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            logger.warning("price alerts: the channel layer failed; retrying", exc_info=True)
            joined_at = None
            await asyncio.sleep(backoff_delay(failures))
            continue
        failures = 0
        kind = message.get("type")
        if kind == BATCH:
            updates = message.get("updates") or []
        elif kind == MESSAGE:
            updates = [(message.get("topic", ""), message.get("payload") or {})]
        else:
            continue
        ticks = ticks_of(updates)
        if ticks:
            offer(ticks)


class Command(BaseCommand):
    help = "Evaluate price alerts on every trade and index print (stack mode; embedded mode runs it as a thread)."

    def handle(self, *args, **options):
        watcher = AlertWatcher()
        watcher.load()

        def joined():
            self.stdout.write(f"price alerts: watching {len(watcher.book)} active alerts")
            self.stdout.flush()

        threading.Thread(target=watcher.run, name="price-alerts", daemon=True).start()
        asyncio.run(follow_market(watcher.offer, on_joined=joined))
