"""PostgreSQL's pool hands out a connection the server closed never: each checkout looks at
the connection (``store.db._needs_ping``) and pings only one idle longer than
``PING_AFTER_IDLE_S``, closed, or whose socket has something to read, where ``pool_pre_ping``
pinged on every checkout, a round trip per transaction. A connection whose backend was
terminated, or that a network device dropped without a word, is replaced without the caller
seeing an error. The idle limit is set by each test (no test waits on the clock)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from cxdesk.store import db
from cxdesk.store.db import make_engine, transaction


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def _pings(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, idle_limit: float = 3600.0
) -> list[int]:
    """Each ping the pool makes, by the backend it pinged; a connection idle longer than
    ``idle_limit`` seconds is pinged (by default none in a test's time)."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", idle_limit)
    pinged: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pinged.append(dbapi_connection.info.backend_pid)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pinged


def _backend(engine: Engine) -> int:
    with transaction(engine) as session:
        pid: int = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def test_a_healthy_connection_is_handed_out_without_a_ping(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinged = _pings(pg, monkeypatch)
    backends = {_backend(pg) for _ in range(5)}
    assert len(backends) == 1  # the one pooled connection, reused
    assert pinged == []


def test_a_connection_idle_for_a_while_is_pinged_and_kept(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinged = _pings(pg, monkeypatch, idle_limit=0.0)
    first = _backend(pg)
    assert _backend(pg) == first  # asked, answered: the same connection
    assert pinged == [first]


def test_a_terminated_connection_is_replaced_without_an_error(
    pg: Engine, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinged = _pings(pg, monkeypatch)
    first = _backend(pg)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,))
    second = _backend(pg)  # no error: the checkout saw it closed
    assert second != first
    assert pinged == [first]  # its socket had the server's goodbye to read: asked, and gone


def test_a_connection_past_selects_descriptor_limit_is_not_pinged_on_every_checkout(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review rev1: a process with more than 1,024 descriptors open (a web server's clients,
    a TUI's files) gets sockets numbered past ``select.select``'s FD_SETSIZE; the socket check
    took the ValueError for "closed" and pinged every checkout, pool_pre_ping's round trip
    back without a word. ``select.poll`` has no such limit."""
    import os
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip("needs 1,200 descriptors")
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    engine = make_engine(pg_url)
    try:
        pinged = _pings(engine, monkeypatch)
        backends = {_backend(engine) for _ in range(3)}
        with engine.connect() as connection:
            fileno = connection.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
        assert fileno >= 1024
        assert len(backends) == 1
        assert pinged == []
    finally:
        engine.dispose()
        for fd in spare:
            os.close(fd)


class _DroppingProxy:
    """A TCP proxy in front of the server that can forget its connections the way a load
    balancer or NAT does at its idle timeout: nothing is sent to the client until it writes,
    which is then answered by a reset (review rev1)."""

    def __init__(self, host: str, port: int) -> None:
        import socket
        import threading

        self._upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._forgotten: set[int] = set()
        self._pairs: list[tuple[Any, Any]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: Any, target: Any, from_client: bool) -> None:
        import socket
        import struct

        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if from_client and id(source) in self._forgotten:  # the flow is unknown: reset
                source.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                source.close()
                target.close()
                return
            try:
                if not data:
                    target.close()
                    return
                target.sendall(data)
            except OSError:  # the other side reset or closed meanwhile
                return

    def forget(self) -> None:
        self._forgotten |= {id(client) for client, _server in self._pairs}

    def close(self) -> None:
        self._listener.close()


def test_a_connection_its_path_forgot_is_replaced_without_an_error(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review rev1: a load balancer's or NAT's idle timeout drops a pooled connection without
    a word; the socket stays quiet until the client writes, and the write is reset. The
    pre-ping's write found it and the pool connected again; so does the ping of a connection
    idle longer than ``PING_AFTER_IDLE_S`` (here: any)."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    proxy = _DroppingProxy(url.host or "127.0.0.1", url.port or 5432)
    engine = make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
    try:
        pinged = _pings(engine, monkeypatch, idle_limit=0.0)  # it lay idle: asked
        first = _backend(engine)
        proxy.forget()
        second = _backend(engine)  # no error: the ping found it gone
        assert second != first
        assert pinged[0] == first
    finally:
        engine.dispose()
        proxy.close()
