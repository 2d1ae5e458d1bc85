"""The survey server in a test: started on a free port of 127.0.0.1 (a thread of this process),
spoken to over real HTTP (urllib) or raw sockets."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import Engine

from cxdesk.web.server import make_survey_server, serve_in_thread
from cxdesk.web.settings import ServerSettings
from tests.peers import free_port


@contextmanager
def running_server(engine: Engine, settings: ServerSettings | None = None) -> Iterator[str]:
    """The survey server's base URL (``http://127.0.0.1:PORT``) while it serves."""
    survey_server = make_survey_server(engine, "127.0.0.1", free_port(), settings)
    thread = serve_in_thread(survey_server)
    try:
        yield f"http://127.0.0.1:{survey_server.server_port}"
    finally:
        survey_server.shutdown()
        survey_server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class Page:
    status: int
    html: str
    headers: Mapping[str, str]


def fetch(
    url: str, form: Mapping[str, object] | None = None, headers: Mapping[str, str] | None = None
) -> Page:
    """GET ``url``, or POST ``form`` to it; the reply whatever its status."""
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return Page(reply.status, reply.read().decode("utf-8"), dict(reply.headers))
    except urllib.error.HTTPError as exc:
        return Page(exc.code, exc.read().decode("utf-8"), dict(exc.headers))


def raw_status(base: str, request: bytes) -> int:
    """Send ``request`` as it is (any bytes) and read the reply's status code."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request)
        head = b""
        while b"\r\n" not in head:
            chunk = connection.recv(4096)
            assert chunk, f"connection closed without a reply to {request!r}"
            head += chunk
    return int(head.split(b" ", 2)[1])
