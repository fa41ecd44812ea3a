"""The long-running processes ride out their dependencies' outages, without a restart.

The feed, the BTC-USDT engine runner, the relay and the market maker run as real
``manage.py`` processes beside daphne (the web process as the Procfile runs it, with its
connection pool), on the test database and a private ``redis-server``:

* Redis is killed for 60 s and started again on the same port (empty, as after a restart
  without persistence): option quotes (``POST /api/v1/options/quotes``) keep working
  meanwhile, every process is still running, and within 5 s of Redis's return a quote
  works, the engine has published the book a trader changed during the outage, the relay
  has published the option order placed during it, and the feed's index reaches a
  ``/ws/market/`` socket again;
* PostgreSQL becomes unreachable for them (a TCP proxy they all connect through is cut:
  open connections drop, new ones are refused; the shared server itself keeps running) for
  longer than their leases and the index's freshness: all still run, and within 5 s of its
  return the feed prints again (a quote works), the engine matches and the relay publishes.

Each process says once that a dependency went away and once that it is back.
"""

from __future__ import annotations

import io
import json
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from rest_framework_simplejwt.tokens import AccessToken
from websockets.sync.client import connect

from orders import demo
from orders.models import SpotOrder, SpotStatus
from orders.options.services import options_order_place, options_quote
from orders.spot.services import order_request, spot_order_place
from tests.orders.conftest import list_series, pick_series, trader
from tests.processes import Child, free_port, test_database_url
from tests.settlement.stack import BackOffice
from tests.tcpproxy import TcpProxy
from trading.leases import checkpoint_load
from trading.models import OutboxEvent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REDIS_OUTAGE = 60.0  # the requirement: a minute without Redis
POSTGRES_OUTAGE = 8.0  # longer than the leases (3 s) and the index's freshness (below)
BACK_WITHIN = 5.0
INDEX_MAX_AGE = 4.0  # the children's INDEX_MAX_AGE_SECONDS: a quote needs a print the feed wrote after the outage
BIN = Path(sys.executable).parent
SYMBOL = "BTC-USDT"


class Platform:
    """The singletons and the web process on one private Redis (``BackOffice``)."""

    def __init__(self, tmp_path, **env):
        self.office = BackOffice(tmp_path, MARKET_MAKER_SYMBOLS=SYMBOL, **env).start_redis()
        self.web_port = free_port()
        self.trader = trader()
        self.token = str(AccessToken.for_user(self.trader))
        self.series = pick_series("BTC").symbol

    @property
    def children(self):
        return self.office.children

    def start(self) -> None:
        python = [sys.executable, "manage.py"]
        spawn = self.office.spawn
        for name, argv in (
            ("feed", [*python, "run_feed", "--ttl", "3"]),
            ("engine", [*python, "run_engine", "--symbol", SYMBOL, "--ttl", "3"]),
            ("relay", [*python, "run_relay", "--ttl", "3"]),
            ("marketmaker", [*python, "run_marketmaker", "--ttl", "3"]),
        ):
            spawn(name, argv)
        web = Child(
            "web",
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.web_port), "trading.asgi:application"],
            {**self.office.env, "DB_POOL_SIZE": "4"},
            self.office.log_dir,
        ).start()
        self.children.append(web)
        for child in self.children[:-1]:
            child.wait_for("LEADER role=", timeout=60)
        wait_until(lambda: self._get("/healthz")[0] == 200, 60, "daphne answers /healthz")
        wait_until(lambda: self.quote()[0] == 201, 30, "a first option quote")

    def assert_alive(self) -> None:
        dead = [child for child in [*self.children] if not child.alive]
        assert not dead, "\n".join(
            f"--- {c.name} exited ({c.proc.returncode}):\n{''.join(c.lines[-30:])}" for c in dead
        )

    def ride_out(self, seconds: float) -> None:
        """Wait ``seconds``, failing as soon as a process exits."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.assert_alive()
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    # --- what traders do ---------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None, timeout: float = 3) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as exc:
            return 0, {"error": repr(exc)}

    def _get(self, path: str) -> tuple[int, dict]:
        return self._request("GET", path)

    def quote(self, timeout: float = 3) -> tuple[int, dict]:
        body = {"series": self.series, "side": "buy", "contracts": "0.1"}
        return self._request("POST", "/api/v1/options/quotes", body, timeout=timeout)

    def bid_at(self, price: str) -> bool:
        status, book = self._get(f"/api/v1/markets/{SYMBOL}/orderbook?depth=50")
        return status == 200 and any(Decimal(p) == Decimal(price) for p, _ in book["bids"])

    def place_spot_bid(self, price: str) -> SpotOrder:
        order, _ = spot_order_place(
            user=self.trader,
            request=order_request(
                **{"symbol": SYMBOL, "side": "buy", "type": "limit", "price": price, "quantity": "0.01"}
            ),
        )
        return order

    def buy_option(self) -> int:
        """An option order placed at the counter; returns its outbox event's id."""
        quote = options_quote(user=self.trader, series=self.series, side="buy", contracts="0.1")
        order, _ = options_order_place(user=self.trader, quote_id=str(quote.pk))
        return OutboxEvent.objects.filter(key=f"option_order:{order.pk}").values_list("id", flat=True).get()

    def index_reaches_a_socket(self, timeout: float) -> bool:
        """A live ``index:BTC`` update (after the subscription's snapshot) within ``timeout``."""
        deadline = time.monotonic() + timeout
        url = f"ws://127.0.0.1:{self.web_port}/ws/market/"
        with connect(url, origin=f"http://127.0.0.1:{self.web_port}", open_timeout=timeout, close_timeout=1) as ws:
            ws.send(json.dumps({"op": "subscribe", "channels": ["index:BTC"]}))
            times = set()
            while time.monotonic() < deadline:
                try:
                    frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
                except TimeoutError:
                    return False
                if frame.get("channel") == "index:BTC":
                    times.add(frame["data"]["time"])
                    if len(times) >= 2:  # the snapshot, then a live update
                        return True
        return False

    def lines_with(self, child, text: str) -> int:
        return sum(text in line for line in child.lines)

    def shutdown(self) -> None:
        self.office.shutdown()


def wait_until(check, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:g}s: {what}")


@pytest.fixture
def platform_setup(transactional_db, tmp_path):
    if not test_database_url().startswith("postgres"):
        pytest.skip("needs PostgreSQL")
    list_series()
    demo.seed(io.StringIO())


@pytest.fixture
def platform(platform_setup, tmp_path):
    stack = Platform(tmp_path)
    try:
        yield stack
    finally:
        stack.shutdown()


@pytest.fixture
def proxied_platform(platform_setup, tmp_path):
    db = urlsplit(test_database_url())
    proxy = TcpProxy(db.hostname or "127.0.0.1", db.port or 5432).start()
    through_proxy = urlunsplit(db._replace(netloc=f"{db.username or ''}@127.0.0.1:{proxy.port}"))
    stack = Platform(tmp_path, DATABASE_URL=through_proxy, INDEX_MAX_AGE_SECONDS=INDEX_MAX_AGE)
    stack.proxy = proxy
    try:
        yield stack
    finally:
        proxy.restore()  # let them stop cleanly (release their leases)
        stack.shutdown()
        proxy.close()


def test_processes_ride_out_a_redis_outage(platform):
    platform.start()
    platform.office.redis.kill9()
    down = time.monotonic()
    # While Redis is away a trader's bid changes the book and an option order needs settling.
    platform.place_spot_bid("64500")
    event_id = platform.buy_option()
    # Quotes need only the index, which the feed keeps writing to PostgreSQL: past the
    # index's freshness (15 s) into the outage they still work.
    platform.ride_out(REDIS_OUTAGE / 2 - (time.monotonic() - down))
    status, body = platform.quote()
    assert status == 201, (status, body)
    platform.ride_out(REDIS_OUTAGE - (time.monotonic() - down))
    platform.office.start_redis()

    took = {
        "quote": wait_until(lambda: platform.quote()[0] == 201, BACK_WITHIN, "an option quote after Redis returned"),
        "book": wait_until(lambda: platform.bid_at("64500"), BACK_WITHIN, "the engine's book snapshot in Redis again"),
        "relay": wait_until(
            lambda: checkpoint_load("relay", {}).get("id", 0) >= event_id,
            BACK_WITHIN,
            "the relay publishing the option order",
        ),
    }
    assert platform.index_reaches_a_socket(BACK_WITHIN), "no live index update on /ws/market/ after Redis returned"
    platform.assert_alive()
    print("seconds after Redis returned:", took)
    # Each said once that it lost Redis (the relay: as its broker) and once that it is back.
    for child in platform.children:
        service = {"feed": "redis", "engine": "redis", "relay": "broker"}.get(child.name)
        if service:
            assert platform.lines_with(child, f"DEPENDENCY DOWN {service}") == 1, "".join(child.lines[-40:])
            assert platform.lines_with(child, f"DEPENDENCY BACK {service}") == 1, "".join(child.lines[-40:])


def test_processes_ride_out_a_postgresql_outage(proxied_platform):
    platform = proxied_platform
    platform.start()
    platform.proxy.cut()
    platform.ride_out(POSTGRES_OUTAGE)  # a quiet spell: no requests find the web's connections dead
    platform.proxy.restore()

    answers = []
    took = {
        "quote": wait_until(
            lambda: answers.append(platform.quote()[0]) or answers[-1] == 201,
            BACK_WITHIN,
            "an option quote (a fresh index print) after PostgreSQL returned",
        )
    }
    assert 500 not in answers, answers  # no dead pooled connection was lent to a request
    order = platform.place_spot_bid("64500")
    event_id = platform.buy_option()
    took["engine"] = wait_until(
        lambda: SpotOrder.objects.get(pk=order.pk).status == SpotStatus.OPEN,
        BACK_WITHIN,
        "the engine taking a new order",
    )
    took["relay"] = wait_until(
        lambda: checkpoint_load("relay", {}).get("id", 0) >= event_id,
        BACK_WITHIN,
        "the relay publishing a new option order",
    )
    platform.assert_alive()
    print("seconds after PostgreSQL returned:", took)
    for child in platform.children:
        if child.name != "web":
            assert platform.lines_with(child, "DEPENDENCY DOWN postgresql") == 1, "".join(child.lines[-40:])
            assert platform.lines_with(child, "DEPENDENCY BACK postgresql") == 1, "".join(child.lines[-40:])
