"""Real network peers for delivery tests: an SMTP server, Twilio's contract mock, a Twilio stub.

Registered as a pytest plugin by ``tests/conftest.py``. Fixtures:

- ``smtp_server`` -> ``SmtpPeer``: an aiosmtpd server on 127.0.0.1 (a real free port), fresh
  for each test. ``peer.settings()`` gives ``MailSettings`` pointing at it; ``peer.received``
  lists what it accepted, each parsed with the ``email`` package (``item.message["Subject"]``,
  ``item.message.get_content()``). Knobs, read at the moment each command arrives:
  ``peer.credentials = ("user", "secret")`` (MAIL refused with 530 until that login; a wrong
  password gets 535), ``peer.refuse = {"x@example.com": 450}`` (RCPT answered with that code),
  ``peer.delay = 2.0`` (seconds before answering DATA), ``peer.drop_at = {3}`` (close the
  connection during the 3rd DATA this server sees, before accepting it),
  ``peer.hold_until_clients = 2`` (hold every DATA until two client connections said EHLO: a
  barrier that makes concurrent senders overlap whatever the scheduling),
  ``peer.answer_first = 2`` (answer the first two DATA this server sees and hold every later
  one until it is set back to None). ``peer.stop()`` and
  ``peer.start(tls=...)`` take it down and back on the same port (``tls``: "none",
  "starttls" or "tls", with a self-signed certificate for 127.0.0.1 in ``peer.cert_file``;
  a client trusts it with ``monkeypatch.setenv("SSL_CERT_FILE", peer.cert_file)``).
  ``peer.connections`` counts the client connections that said EHLO/HELO.
- ``twilio_mock`` -> URL of Prism serving Twilio's own OpenAPI contract
  (``tests/contracts/twilio``), once per session: ``CXDESK_TEST_TWILIO_URL`` when set
  (``scripts/test`` starts one), else a Prism started here (installed once into
  ``.cache/prism``) and stopped at the end. It answers
  201 with the spec's example (sid ``SMaaaa...``) to a valid request and 422 to one Twilio's
  contract refuses. It needs basic auth (any) and an account SID matching
  ``^AC[0-9a-fA-F]{32}$`` (``TWILIO_TEST_ACCOUNT_SID``); ``twilio_settings(url)`` builds
  ``SmsSettings`` that pass.
- ``twilio_stub`` -> ``TwilioStub``: a tiny HTTP server for what the contract mock cannot do
  (it only knows the spec's 201): ``stub.replies.append((429, {...}))`` queues answers
  (default: 201 with a new ``SM...`` sid), ``stub.requests`` records what arrived
  (method, path, headers, form). ``twilio_settings(stub.url)`` points the channel at it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import fcntl
import itertools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from cxdesk.engine.channels.email import MailSettings
from cxdesk.engine.channels.sms import SmsSettings

ROOT = Path(__file__).resolve().parent.parent
TWILIO_SPEC = ROOT / "tests" / "contracts" / "twilio" / "twilio_api_v2010.json"
PRISM_DIR = ROOT / ".cache" / "prism"
PRISM_BIN = PRISM_DIR / "node_modules" / ".bin" / "prism"
PRISM_PACKAGE = "@stoplight/prism-cli@5"
PRISM_START_TIMEOUT = 120.0
TWILIO_URL_ENV = "CXDESK_TEST_TWILIO_URL"
TWILIO_TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TEST_FROM = "+15005550006"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (aiosmtpd and Prism cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- SMTP --------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    """One message the SMTP peer accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    """Parsed with ``email.policy.default`` (CRLF read as LF, as a mail client shows it)."""
    raw: bytes


@dataclass
class SmtpPeer:
    """An aiosmtpd server and its knobs; see the module docstring."""

    host: str
    port: int
    cert_file: str
    key_file: str
    credentials: tuple[str, str] | None = None
    refuse: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    drop_at: set[int] = field(default_factory=set)
    hold_until_clients: int = 0
    answer_first: int | None = None
    received: list[ReceivedMail] = field(default_factory=list)
    data_seen: int = 0
    clients: set[object] = field(default_factory=set)
    """The peer address (host, port) of each client connection that said EHLO/HELO."""
    tls: str = "none"
    _controller: Controller | None = None

    @property
    def connections(self) -> int:
        return len(self.clients)

    def settings(self, **overrides: Any) -> MailSettings:
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "tls": self.tls,
            "mail_from": "Ask the Experts <desk@example.com>",
            "timeout": 5.0,
        }
        if self.credentials:
            values["username"], values["password"] = self.credentials
        values.update(overrides)
        return MailSettings(**values)

    def start(self, *, tls: str = "none") -> None:
        if self._controller is not None:
            self.stop()
        kwargs: dict[str, Any] = {}
        if tls != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert_file, self.key_file)
            kwargs["tls_context" if tls == "starttls" else "ssl_context"] = context
        self._controller = Controller(
            _SmtpHandler(self),
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            **kwargs,
        )
        self._controller.start()
        self.tls = tls

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if self.credentials is None:
            return AuthResult(success=True)
        user, password = self.credentials
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)


class _SmtpHandler:
    def __init__(self, peer: SmtpPeer):
        self.peer = peer

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self.peer.clients.add(session.peer)
        session.host_name = hostname
        return "250 127.0.0.1"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.peer.clients.add(session.peer)
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.peer.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        code = self.peer.refuse.get(address)
        if code:
            reason = "4.2.1 Mailbox busy, try later" if code < 500 else "5.1.1 No such user"
            return f"{code} {reason}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.peer.data_seen += 1
        number = self.peer.data_seen
        while len(self.peer.clients) < self.peer.hold_until_clients or (
            self.peer.answer_first is not None and number > self.peer.answer_first
        ):
            await asyncio.sleep(0.01)  # the server's own loop: other clients are still served
        if self.peer.delay:
            await asyncio.sleep(self.peer.delay)
        if self.peer.data_seen in self.peer.drop_at:
            assert server.transport is not None
            server.transport.close()
            return "421 4.3.0 Closing (dropped by the test)"
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.peer.received.append(
            ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, raw)
        )
        return "250 OK queued"


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate and key for 127.0.0.1 (made with the openssl command)."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    if shutil.which("openssl"):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
            + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
            + ["-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
    return str(cert), str(key)


@pytest.fixture
def smtp_server(smtp_certificate: tuple[str, str]) -> Iterator[SmtpPeer]:
    """A running SMTP server on 127.0.0.1 for this test (plain; ``start(tls=...)`` for TLS)."""
    peer = SmtpPeer("127.0.0.1", free_port(), *smtp_certificate)
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


# -- Twilio: the contract mock (Prism) ---------------------------------------------------------


def twilio_settings(url: str, **overrides: Any) -> SmsSettings:
    """SMS settings the contract mock accepts (account SID pattern, basic auth), at ``url``."""
    values: dict[str, Any] = {
        "account_sid": TWILIO_TEST_ACCOUNT_SID,
        "auth_token": "test-token",
        "from_number": TWILIO_TEST_FROM,
        "api_url": url,
        "timeout": 10.0,
    }
    values.update(overrides)
    return SmsSettings(**values)


def install_prism() -> Path:
    """Prism's binary, installed into .cache/prism the first time (npm; a lock for xdist)."""
    PRISM_DIR.mkdir(parents=True, exist_ok=True)
    with open(PRISM_DIR.parent / "prism.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not PRISM_BIN.exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("npm is needed to install Prism (the Twilio contract mock)")
            done = subprocess.run(
                [npm, "install", "--prefix", str(PRISM_DIR), "--no-audit", "--no-fund"]
                + [PRISM_PACKAGE],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0 or not PRISM_BIN.exists():
                raise RuntimeError(f"npm install {PRISM_PACKAGE} failed: {done.stderr[-2000:]}")
    return PRISM_BIN


@contextmanager
def running_prism() -> Iterator[str]:
    """Start Prism on Twilio's spec on a free port, yield its URL, stop it at the end."""
    binary = install_prism()
    port = free_port()
    with tempfile.NamedTemporaryFile("w+b", prefix="prism-", suffix=".log") as log:
        process = subprocess.Popen(
            [str(binary), "mock", "-h", "127.0.0.1", "-p", str(port), str(TWILIO_SPEC)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + PRISM_START_TIMEOUT
            while b"Prism is listening" not in Path(log.name).read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = Path(log.name).read_bytes()[-3000:].decode(errors="replace")
                    raise RuntimeError(f"Prism did not start ({binary}); its log:\n{tail}")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


_GIVEN_TWILIO_URL = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Note CXDESK_TEST_TWILIO_URL now: each test runs with CXDESK_* variables removed."""
    config.stash[_GIVEN_TWILIO_URL] = os.environ.get(TWILIO_URL_ENV, "")


@pytest.fixture(scope="session")
def twilio_mock(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of the Twilio contract mock: ``CXDESK_TEST_TWILIO_URL``, or a Prism started here."""
    given = pytestconfig.stash.get(_GIVEN_TWILIO_URL, "")
    if given:
        yield given.rstrip("/")
        return
    with ExitStack() as stack:
        try:
            url = stack.enter_context(running_prism())
        except RuntimeError as exc:
            pytest.fail(f"{exc}\nOr set {TWILIO_URL_ENV} to a running Prism's URL.", pytrace=False)
        yield url


# -- Twilio: a stub for statuses the contract does not define ----------------------------------


@dataclass
class StubRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class TwilioStub:
    """A local HTTP server answering like Twilio; see the module docstring."""

    url: str
    replies: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    requests: list[StubRequest] = field(default_factory=list)
    _sids: Iterator[int] = field(default_factory=itertools.count)

    def next_reply(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.replies:
            return self.replies.pop(0)
        sid = f"SM{next(self._sids):032x}"
        return 201, {"sid": sid, "status": "queued", "to": form.get("To"), "body": form.get("Body")}


def twilio_error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    """A reply shaped like Twilio's error JSON."""
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """A threading HTTP server on a free 127.0.0.1 port, serving on a thread until the end."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def twilio_stub() -> Iterator[TwilioStub]:
    """A Twilio look-alike on 127.0.0.1 for this test."""
    with http_server(_StubHandler) as server:
        stub = TwilioStub(url=f"http://127.0.0.1:{server.server_address[1]}")
        server.stub = stub  # type: ignore[attr-defined]
        yield stub


class _StubHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        stub: TwilioStub = self.server.stub  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        stub.requests.append(StubRequest("POST", self.path, dict(self.headers), form))
        status, body = stub.next_reply(form)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on ``stub.requests``."""
