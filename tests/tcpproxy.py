"""A TCP proxy for outage tests: child processes reach a server (PostgreSQL) through it, and
the test cuts it to make the server unreachable for them alone -- the shared server keeps
serving everyone else.

``cut()`` behaves like a server restart seen from the clients: every open connection is
closed under them and new ones are refused (nothing listens on the port) until
``restore()`` listens again on the same port."""

from __future__ import annotations

import asyncio
import threading

from tests.processes import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, port: int | None = None):
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> TcpProxy:
        self._thread.start()
        self.restore()
        return self

    def _call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    # --- control ---------------------------------------------------------------------------

    def restore(self) -> None:
        """Listen again (on the same port)."""
        self._call(self._listen())

    def cut(self) -> None:
        """Stop listening and drop every open connection at once."""
        self._call(self._cut())

    def close(self) -> None:
        if self._thread.is_alive():
            self.cut()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    @property
    def listening(self) -> bool:
        return self._server is not None

    # --- on the proxy's loop ---------------------------------------------------------------

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        if self._server is None:  # cut while connecting
            client_writer.transport.abort()
            server_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
