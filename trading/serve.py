"""daphne with a graceful drain: ``python -m trading.serve <daphne's arguments>``.

Plain daphne stops at once on SIGTERM: the requests it is serving are cut off. This entry
point runs the same daphne (same arguments, same ASGI application) but on SIGTERM or SIGINT
it drains first:

1. stops listening, so new connections go to the other web processes sharing the socket
   (``--fd``: one listening socket inherited by several processes, as ``scripts/supervise``
   runs them) or to the other addresses behind the balancer;
2. closes every websocket with a normal closure (code 1000, reason ``restart``): clients
   reconnect, land on a live process and resubscribe (a snapshot, then deltas);
3. lets every HTTP request in flight finish (at most ``WEB_DRAIN_SECONDS``, default 20);
4. then stops the reactor.

It prints ``SERVING pid=...`` once it listens and ``DRAINED pid=... in ...s`` when done, for
the supervisor's progress output.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol

DRAIN_SECONDS = float(os.environ.get("WEB_DRAIN_SECONDS", "20"))


class DrainingServer(Server):
    def run(self):
        from twisted.internet import reactor

        self.ports = []
        self.draining_since: float | None = None
        # daphne's own handlers would stop the reactor at once; ours drain first.
        self.signal_handlers = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: reactor.callFromThread(self.drain))
        super().run()

    def listen_success(self, port):
        self.ports.append(port)
        super().listen_success(port)
        print(f"SERVING pid={os.getpid()}", flush=True)

    def drain(self) -> None:
        if self.draining_since is not None:
            return
        self.draining_since = time.monotonic()
        print(f"DRAINING pid={os.getpid()}", flush=True)
        for port in self.ports:
            port.stopListening()
        for protocol, details in list(self.connections.items()):
            if isinstance(protocol, WebSocketProtocol) and "disconnected" not in details:
                with contextlib.suppress(Exception):  # already closing
                    protocol.sendClose(code=1000, reason="restart")
        self._drain_check()

    def _in_flight(self) -> int:
        return sum(1 for details in list(self.connections.values()) if "disconnected" not in details)

    def _drain_check(self) -> None:
        from twisted.internet import reactor

        elapsed = time.monotonic() - self.draining_since
        left = self._in_flight()
        if left and elapsed < DRAIN_SECONDS:
            reactor.callLater(0.05, self._drain_check)
            return
        print(f"DRAINED pid={os.getpid()} in {elapsed:.2f}s ({left} connections cut)", flush=True)
        self.stop()


class DrainingCommandLine(CommandLineInterface):
    server_class = DrainingServer


def main() -> None:
    sys.exit(DrainingCommandLine().run(sys.argv[1:]))


if __name__ == "__main__":
    main()
