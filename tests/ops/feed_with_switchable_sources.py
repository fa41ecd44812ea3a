"""Run by test_drill_feed_and_relay.py as a child process: the real index feed
(``marketdata.feed_runner``: its lease, its ticks, its prints, its candles) on the test
database, whose price sources — the outside services — can be switched off from outside.

While the file named by ``FEED_SOURCES_OFF_FILE`` exists, every source answers nothing,
as a real exchange's adapter does on a timeout or a network error (``CcxtTickerSource``
returns ``None``); once it is removed they answer again."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

from marketdata.feed_runner import LEASE, FeedRunner  # noqa: E402
from trading.leases import Singleton  # noqa: E402

OFF = Path(os.environ["FEED_SOURCES_OFF_FILE"])


class Switchable:
    def __init__(self, source):
        self.source = source
        self.name = source.name

    def fetch(self, underlying, now):
        quote = self.source.fetch(underlying, now)  # the simulated market keeps its own path
        return None if OFF.exists() else quote


class SwitchableFeed(FeedRunner):
    def on_lead(self, epoch: int) -> None:
        super().on_lead(epoch)
        self.sources = [Switchable(source) for source in self.sources]


def main() -> None:
    runner = SwitchableFeed()
    singleton = Singleton(
        LEASE,
        work=runner.tick,
        ttl=3.0,
        interval=settings.FEED_INTERVAL_SECONDS,
        on_lead=runner.on_lead,
        announce=lambda line: print(line, flush=True),
    )
    runner.holder = singleton.holder
    singleton.run()


if __name__ == "__main__":
    main()
