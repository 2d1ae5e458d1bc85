"""The survey server as an attacker meets it: held and slow connections, floods of answers,
malformed links; and a survey whose name is not ASCII. On SQLite and PostgreSQL.

The server runs for real on 127.0.0.1 (waitress, in a thread of this process) with short
limits; every check waits on what it checks (a socket closed by the server, a reply), never
on time.
"""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cxdesk.store.models import Survey, SurveyResponse
from cxdesk.web.limits import RateLimiter, address_key
from cxdesk.web.settings import ServerSettings
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.web_helpers import fetch, raw_status, running_server

GIVE_UP = 60.0
"""Seconds a test waits for the server to close connections before failing (a guard against
hanging for ever, not a measure: they close after the 1 s read timeout)."""
DETRACTOR = {"score": "3", "product": "API", "comment": "Slow"}


@pytest.fixture
def demo(cli: Cli, engine: Engine) -> Engine:
    result = cli("demo")
    assert result.exit_code == 0, str(result)
    return engine


def host_port(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def wait_until_closed(sockets: list[socket.socket], at_least: int = 0) -> list[socket.socket]:
    """Read each socket until the server has closed all of them (or ``at_least`` of them);
    the ones still open then, or after GIVE_UP s."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    still_open = set(sockets)
    give_up = time.monotonic() + GIVE_UP
    enough = len(sockets) - (at_least or len(sockets))
    while len(still_open) > enough and time.monotonic() < give_up:
        for key, _ in selector.select(timeout=1):
            try:
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            except ConnectionResetError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                still_open.discard(key.fileobj)  # type: ignore[arg-type]
    selector.close()
    return [s for s in sockets if s in still_open]


# -- held, silent and slow connections ---------------------------------------------------------


@pytest.mark.slow
def test_300_half_open_connections_leave_the_server_answering_and_are_closed_by_it(
    engine: Engine,
) -> None:
    with running_server(engine, ServerSettings(read_timeout=1)) as base:
        held: list[socket.socket] = []
        try:
            for number in range(300):
                sock = socket.create_connection(host_port(base), timeout=30)
                held.append(sock)
                if number % 3 == 1:  # headers that never end
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: survey\r\n")
                elif number % 3 == 2:  # a body announced that never comes
                    sock.sendall(
                        b"POST /nps HTTP/1.1\r\nHost: survey\r\nContent-Length: 100\r\n"
                        b"Content-Type: application/x-www-form-urlencoded\r\n\r\nemail=a"
                    )
            # Every connection was accepted and is held open; a customer is still served.
            answer = fetch(base + "/")
            assert answer.status == 200 and "Surveys" in answer.html
            assert wait_until_closed(held) == []
        finally:
            for sock in held:
                sock.close()


@pytest.mark.slow
def test_a_request_dripped_a_byte_at_a_time_is_closed_after_the_read_timeout(
    engine: Engine,
) -> None:
    """Waitress alone only times out idleness: a byte every 0.2 s would never be idle."""
    with running_server(engine, ServerSettings(read_timeout=1)) as base:
        sock = socket.create_connection(host_port(base), timeout=30)
        closed = threading.Event()

        def drip() -> None:
            try:
                while not closed.is_set():
                    sock.send(b"X-Slow: drip\r\n"[:1])
                    time.sleep(0.2)  # the attacker's pace, not a wait for the server
            except OSError:
                closed.set()

        dripper = threading.Thread(target=drip, daemon=True)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: survey\r\n")
        dripper.start()
        try:
            assert wait_until_closed([sock]) == []
        finally:
            closed.set()
            dripper.join(timeout=10)
            sock.close()


def test_past_the_connection_limit_a_new_connection_closes_the_longest_waiting(
    engine: Engine,
) -> None:
    """With a read timeout of an hour, only closing held connections lets a customer in."""
    with running_server(engine, ServerSettings(read_timeout=3600, connection_limit=50)) as base:
        held = [socket.create_connection(host_port(base), timeout=30) for _ in range(100)]
        try:
            for sock in held[1::2]:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: survey\r\n")
            assert fetch(base + "/").status == 200
            # The longest waiting were closed (which ones depends on when each one's bytes
            # came): no more than the limit stay open.
            assert len(wait_until_closed(held, at_least=50)) <= 50
        finally:
            for sock in held:
                sock.close()


# -- rate limits -------------------------------------------------------------------------------


def nps(base: str, email: str, forwarded_for: str = "") -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    page = fetch(base + "/nps", {"email": email, **DETRACTOR}, headers)
    if page.status == 429:
        assert "Too many answers" in page.html and "Nothing was recorded" in page.html
        assert int(page.headers["Retry-After"]) > 0
    return page.status


def test_answers_past_the_limit_per_address_get_429_and_store_nothing(demo: Engine) -> None:
    limits = ServerSettings(answers_per_address=3, answers_per_email=100)
    with running_server(demo, limits) as base:
        assert [nps(base, f"c{n}@example.com") for n in range(3)] == [200, 200, 200]
        before = table_counts(demo)
        # X-Forwarded-For from a client that is no trusted proxy changes nothing.
        assert nps(base, "c3@example.com", forwarded_for="203.0.113.9") == 429
        assert nps(base, "c4@example.com") == 429
        assert table_counts(demo) == before
        assert fetch(base + "/nps").status == 200  # the form itself is still shown


def test_answers_past_the_limit_per_email_get_429_and_store_nothing(demo: Engine) -> None:
    """Behind a trusted proxy each forwarded address counts on its own; the email still
    counts across them."""
    limits = ServerSettings(answers_per_address=2, answers_per_email=2, trusted_proxy="127.0.0.1")
    with running_server(demo, limits) as base:
        assert nps(base, "Same@Example.com", forwarded_for="203.0.113.1") == 200
        assert nps(base, "same@example.com", forwarded_for="203.0.113.2") == 200
        before = table_counts(demo)
        assert nps(base, "same@example.com", forwarded_for="203.0.113.3") == 429
        assert table_counts(demo) == before
        # The proxy's own address (without the header) and other forwarded ones have their
        # own allowance; a forwarded address has used one of its two.
        assert nps(base, "other@example.com", forwarded_for="203.0.113.1") == 200
        assert nps(base, "third@example.com", forwarded_for="203.0.113.1") == 429
        assert nps(base, "fourth@example.com") == 200


def test_the_rate_limiter_allows_a_burst_then_one_answer_per_interval() -> None:
    now = [1000.0]
    limiter = RateLimiter(3, 60, clock=lambda: now[0], max_keys=2)
    assert [limiter.allow("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.allow("a") == pytest.approx(20)
    assert limiter.allow("b") == 0  # keys count apart
    now[0] += 20
    assert limiter.allow("a") == 0 and limiter.allow("a") > 0
    now[0] += 60
    assert limiter.allow("c") == 0  # three keys: the full ones are forgotten first
    assert len(limiter._full_at) <= 2
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"


class _Watched(OrderedDict[str, float]):
    """A limiter's keys, counting every walk over all of them."""

    walks = 0

    def __iter__(self) -> Iterator[str]:
        self.walks += 1
        return super().__iter__()

    def items(self) -> Any:
        self.walks += 1
        return super().items()


def test_past_its_key_limit_the_limiter_forgets_the_least_recently_seen_without_a_walk() -> None:
    """An IPv6 /48 supplies 65,536 /64 keys: past the limit, each new key must not walk them."""
    limiter = RateLimiter(2, 60, clock=lambda: 1000.0, max_keys=1000)
    limiter._full_at = keys = _Watched()
    assert [limiter.allow("flooded") for _ in range(2)] == [0, 0]
    for n in range(5000):
        assert limiter.allow(address_key(f"2001:db8:1:{n:x}::1")) == 0
        if n % 500 == 0:
            assert limiter.allow("flooded") > 0  # refused, and seen: kept
    assert len(keys) == 1000 and keys.walks == 0
    assert limiter.allow("flooded") > 0  # still limited: never forgotten
    assert address_key("2001:db8:1:0::1") not in keys  # the least recently seen went


def test_bad_server_settings_are_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_SURVEY_READ_TIMEOUT", "soon")
    assert_one_error_line(
        cli("survey", "serve"), "survey_server.read_timeout must be a whole number"
    )
    monkeypatch.delenv("CXDESK_SURVEY_READ_TIMEOUT")
    monkeypatch.setenv("CXDESK_SURVEY_TRUSTED_PROXY", "proxy.example")
    assert_one_error_line(cli("survey", "serve"), "trusted_proxy must be an IP address")


# -- malformed links and answers ----------------------------------------------------------------

_URL_PIECES = st.sampled_from(
    [chr(c) for c in range(0x21, 0x7F) if chr(c) != "#"] + ["%C2%B2", "%FF", "%00", "%2", "%E2%80"]
)


def url_text(max_size: int) -> st.SearchStrategy[str]:
    """Text of URL characters and percent-escapes, valid or not."""
    return st.lists(_URL_PIECES, max_size=max_size).map("".join)


@st.composite
def request_targets(draw: st.DrawFn) -> str:
    path = draw(st.sampled_from(["", "csat", "nps", "checkin"]) | url_text(12))
    fields = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["ref", "SupportRep"]) | url_text(6),
                url_text(30),
            ),
            max_size=4,
        )
    )
    query = "&".join(f"{name}={value}" for name, value in fields)
    return "/" + path + (f"?{query}" if fields else "")


@pytest.mark.slow
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=request_targets(), post=st.booleans(), body=st.binary(max_size=60))
@example(target="/csat?ref=%C2%B2.4.AAAA", post=False, body=b"")
@example(target="/csat?ref=" + "9" * 5000 + ".1.AAAA", post=False, body=b"")
@example(target="/%FF", post=False, body=b"")
@example(target="/nps?%FF=1", post=True, body=b"")
@example(target="/nps", post=True, body=b"email=%FF&score=%00")
@example(target="/nps", post=True, body=b"comment=a%00b&email=x%40example.com")
def test_every_malformed_link_or_answer_is_a_4xx_page(
    demo_server: tuple[Engine, str], target: str, post: bool, body: bytes
) -> None:
    engine, base = demo_server
    if post:
        request = (
            f"POST {target} HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
    else:
        request = f"GET {target} HTTP/1.0\r\n\r\n".encode("latin-1")
    status = raw_status(base, request)
    assert status < 500, (target, body)


@pytest.fixture
def demo_server(demo: Engine) -> Iterator[tuple[Engine, str]]:
    limits = ServerSettings(answers_per_address=1_000_000, answers_per_email=1_000_000)
    with running_server(demo, limits) as base:
        yield demo, base


def test_malformed_links_and_answers_say_so_and_store_nothing(
    demo_server: tuple[Engine, str],
) -> None:
    engine, base = demo_server
    before = table_counts(engine)
    assert fetch(base + "/csat?ref=%C2%B2.4.AAAA").status == 403
    bad_utf8 = fetch(base + "/csat?ref=%FF")
    assert bad_utf8.status == 400 and "not valid" in bad_utf8.html
    assert fetch(base + "/%FF").status == 400
    assert fetch(base + "/nps%00").status == 404
    form = "application/x-www-form-urlencoded"
    for body, status in [
        (b"email=a%40example.com&score=3&product=API&comment=%00", 400),  # a NUL
        (b"email=a%40example.com&score=%FF", 400),  # not UTF-8
        (b"&".join(b"q%d=1" % n for n in range(200)), 400),  # too many fields
    ]:
        request = f"POST /nps HTTP/1.0\r\nContent-Type: {form}\r\nContent-Length: {len(body)}"
        assert raw_status(base, request.encode() + b"\r\n\r\n" + body) == status, body
    multipart = b"POST /nps HTTP/1.0\r\nContent-Type: multipart/form-data\r\n\r\n"
    assert raw_status(base, multipart) == 415
    too_big = f"POST /nps HTTP/1.0\r\nContent-Type: {form}\r\nContent-Length: 1000000\r\n\r\n"
    assert raw_status(base, too_big.encode()) == 413
    assert table_counts(engine) == before


def test_the_desks_one_text_rule_holds_on_the_web(demo_server: tuple[Engine, str]) -> None:
    """Line separators and bidirectional overrides are refused in the path and in fields as
    everywhere else (cxdesk.text); a long answer keeps its line breaks and tabs."""
    engine, base = demo_server
    with Session(engine) as session:  # an older desk's name, stored before the rule
        session.add(Survey(name="nps\u2028old", title="Old", kind="nps", questions=[]))
        session.commit()
    assert fetch(base + "/" + quote("nps\u2028old")).status == 404
    before = table_counts(engine)
    for bad in ("\u2028", "\u2029", "\u202e", "\u2066"):
        assert fetch(base + "/nps?SupportRep=" + quote(bad)).status == 400, repr(bad)
        answer = {"email": "bidi@example.com", **DETRACTOR}
        assert fetch(base + "/nps", {**answer, f"x{bad}": "1"}).status == 400, repr(bad)
    assert table_counts(engine) == before
    answer = {"email": "lines@example.com", **DETRACTOR, "comment": "Slow\r\n\tand late"}
    assert fetch(base + "/nps", answer).status == 200
    with Session(engine) as session:
        stored = session.exec(select(SurveyResponse).order_by(col(SurveyResponse.id).desc()))
        assert stored.first().answers["comment"] == "Slow\n\tand late"  # type: ignore[union-attr]


# -- a survey named in Spanish -------------------------------------------------------------------


def test_a_survey_whose_name_is_not_ascii_is_listed_shown_and_answered(
    demo_server: tuple[Engine, str],
) -> None:
    engine, base = demo_server
    with Session(engine) as session:
        session.add(
            Survey(
                name="Encuesta Año",
                title="¿Nos recomendaría?",
                kind="nps",
                questions=[
                    {"id": "correo", "label": "Su correo", "type": "email", "required": True},
                    {"id": "nota", "label": "Nota", "type": "number", "min": 0, "max": 10},
                ],
            )
        )
        session.commit()
    address = "/" + quote("Encuesta Año")
    assert address == "/Encuesta%20A%C3%B1o"
    index = fetch(base + "/")
    assert f'href="{address}"' in index.html
    form = fetch(base + address)
    assert form.status == 200 and "¿Nos recomendaría?" in form.html
    assert f'action="{address}"' in form.html
    before = table_counts(engine)["survey_response"]
    answered = fetch(base + address, {"correo": "ana@example.es", "nota": "9"})
    assert answered.status == 200, answered.html
    assert table_counts(engine)["survey_response"] == before + 1
    assert fetch(base + "/" + quote("Encuesta Ano")).status == 404


@pytest.mark.slow
def test_the_cli_loads_no_web_server_until_asked() -> None:
    code = "import sys, cxdesk.cli.main; print(sorted({'waitress', 'jinja2'} & set(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
