"""The survey server: the survey application on waitress, with its limits.

Waitress because it serves our WSGI application as it is, reads every request whole in one
event loop before a bounded pool of threads runs it (a slow or silent client costs a socket,
not a thread), and has the limits a public server needs: open connections, request header and
body sizes, an idle timeout, and a trusted proxy's ``X-Forwarded-For``. An ASGI server would
have meant rewriting the application around blocking database calls for no gain.

On top of waitress: a request must arrive whole within the read timeout of its first byte
(waitress alone only times out idleness, so a client sending one byte every few seconds would
keep its connection for ever); at the connection limit a new connection closes the one that
has waited longest (waitress would stop accepting until the read timeout freed some); and the
server polls its sockets (``poll``, not ``select``, which stops at file descriptor 1024).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server

from cxdesk.web.app import SurveyApp
from cxdesk.web.settings import MAX_BODY_BYTES, MAX_HEADER_BYTES, ServerSettings

log = logging.getLogger("cxdesk.web")


class DeadlineChannel(HTTPChannel):
    """A connection whose request counts as active only from its first byte: reading more of
    the same request does not put off the server's timeout (``last_activity``). A connection
    that fills the server's last place closes the one waiting longest without a request being
    served, so held connections never lock customers out (waitress would stop accepting)."""

    last_activity: float

    def add_channel(self, map: dict[int, Any] | None = None) -> None:
        super().add_channel(map)
        if len(self._map) >= self.adj.connection_limit:
            waiting = [
                c
                for c in self.server.active_channels.values()
                if c is not self and not c.requests and not c.will_close
            ]
            if waiting:  # closed now: the server never sees itself full
                min(waiting, key=lambda c: c.last_activity).handle_close()

    def handle_read(self) -> None:
        pending, started = self.request, self.last_activity
        super().handle_read()
        if pending is not None and self.request is pending:
            self.last_activity = started


class SurveyServer:
    """The survey server bound to its address, not serving yet; ``serve_forever`` serves
    until ``shutdown`` (from another thread) or Ctrl+C."""

    def __init__(self, engine: Engine, host: str, port: int, settings: ServerSettings):
        """OSError when the address cannot be bound, ValueError when it is not an address."""
        proxy: dict[str, Any] = {}
        if settings.trusted_proxy:
            proxy = {
                "trusted_proxy": settings.trusted_proxy,
                "trusted_proxy_count": 1,
                "trusted_proxy_headers": {"x-forwarded-for"},
            }
        self.connection_limit = _open_files_for(settings.connection_limit)
        self.map: dict[int, Any] = {}
        create_server(  # registers its listeners in self.map
            SurveyApp(engine, settings),
            map=self.map,
            host=host,
            port=port,
            threads=settings.threads,
            connection_limit=self.connection_limit,
            channel_timeout=settings.read_timeout,
            # Look for timed-out connections often enough to close them near their deadline.
            cleanup_interval=max(1, min(30, settings.read_timeout // 4)),
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=MAX_BODY_BYTES,
            asyncore_use_poll=True,
            clear_untrusted_proxy_headers=True,
            expose_tracebacks=False,
            ident="cxdesk",
            **proxy,
        )
        for listener in self._listeners():
            listener.channel_class = DeadlineChannel
        self._stop, self._serving, self._stopped = (threading.Event() for _ in range(3))

    def _listeners(self) -> list[BaseWSGIServer]:
        return [d for d in self.map.values() if isinstance(d, BaseWSGIServer)]

    @property
    def server_port(self) -> int:
        return int(self._listeners()[0].effective_port)

    def serve_forever(self) -> None:
        adj = self._listeners()[0].adj
        self._serving.set()
        try:
            while not self._stop.is_set():
                wasyncore.loop(
                    timeout=adj.asyncore_loop_timeout, map=self.map, use_poll=True, count=1
                )
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serving (from another thread) and wait until the loop has ended."""
        self._stop.set()
        self._listeners()[0].pull_trigger()
        if self._serving.is_set():
            self._stopped.wait()

    def server_close(self) -> None:
        """Close every connection and the listening sockets; end the pool's threads."""
        for listener in self._listeners():
            listener.task_dispatcher.shutdown()
        wasyncore.close_all(self.map)


def _open_files_for(connections: int) -> int:
    """Raise this process's open-file limit to hold ``connections`` (as far as the hard limit
    allows); the connections it can hold, with room for the database and the pool."""
    try:
        import resource
    except ImportError:  # not on POSIX: nothing to raise
        return connections
    spare = 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + spare
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("open-file limit %d: at most %d connections", soft, soft - spare)
        return max(1, soft - spare)
    return connections


def log_requests_to_stderr() -> None:
    """One line per request (and waitress's warnings) on stderr, for ``cxdesk survey serve``."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    for name in ("cxdesk.web", "waitress"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def make_survey_server(
    engine: Engine, host: str, port: int, settings: ServerSettings | None = None
) -> SurveyServer:
    """A server bound to ``host:port`` (not serving yet); OSError if the port is taken."""
    return SurveyServer(engine, host, port, settings or ServerSettings())


def serve_in_thread(server: SurveyServer) -> threading.Thread:
    """Serve until ``server.shutdown()``; for tests and the CLI alike."""
    thread = threading.Thread(target=server.serve_forever, name="survey-server", daemon=True)
    thread.start()
    return thread
