"""The proxy plugin: a TCP proxy the test controls, to cut the database connection for real.

It runs its own event loop in a thread, so it works for code in the test process and for
subprocesses alike.  ``cut()`` aborts every open connection and refuses new ones (the listening
socket is closed: clients see "connection refused", as when the database is down);
``restore()`` listens again on the same port.  ``listen_host`` (default 127.0.0.1) is where it
listens: another address of this machine serves a client in a network namespace (tests/netns.py).

Fixture: ``db_proxy``, a started proxy in front of the server of ``db_url``
(:meth:`TcpProxy.route` gives the URL that goes through it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.helpers import free_port

__all__ = ["TcpProxy", "db_proxy"]


class TcpProxy:
    """A proxy on a free port of ``listen_host`` to ``target_host:target_port``; a context
    manager (started on enter, every connection aborted on exit)."""

    def __init__(
        self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1"
    ) -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port: int = free_port(listen_host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        self._run(self._drain())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _drain(self) -> None:
        # Let aborted transports and pipe tasks finish so nothing is left unclosed.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)

    def _run(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    def route(self, url: str) -> str:
        """``url`` (a database URL) pointing through this proxy: same user and database."""
        parts = urlsplit(url)
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    def restore(self) -> None:
        """Accept connections again."""
        self._run(self._listen())

    def cut(self) -> None:
        """Abort all connections and refuse new ones."""
        self._run(self._cut())

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, self.listen_host, self.port, reuse_address=True
            )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)


@pytest.fixture
def db_proxy(db_url: str) -> Iterator[TcpProxy]:
    """A started :class:`TcpProxy` in front of the PostgreSQL server of ``db_url``."""
    parts = urlsplit(db_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy
