"""A real IMAP server for the mail-fetch tests: Dovecot, started by ``scripts/imap-server``.

Registered as a pytest plugin by ``tests/conftest.py``. Fixtures:

- ``imap_server`` -> ``ImapServer``, once per session: the one named by ``CXDESK_TEST_IMAP``
  (``HOST:PORT``; ``scripts/test`` starts one), else one started here in a temp folder and
  stopped at the end. Tests run in parallel on it, so each works in a folder of its own:
- ``imap_mailbox`` -> ``Mailbox``: a new, empty folder on ``imap_server`` for this test.
  ``box.settings(**overrides)`` gives ``ImapSettings`` for it (plain IMAP, the test user),
  ``box.append(raw)`` puts a message in it over IMAP (as an MTA's delivery would),
  ``box.unseen()`` / ``box.seen()`` list the UIDs without ``\\Seen`` / with it.
- ``own_imap_server`` -> ``ImapServer`` of this test's own, for a test that stops and starts
  it (``stop()``, ``start()``: back on the same ports) or speaks TLS to it
  (``tls_port``, ``cert_file``; a client trusts it with ``SSL_CERT_FILE``). ~2 s to make.

The test user is ``desk`` / ``imap-test-password`` (written by ``scripts/imap-server``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from cxdesk.engine.inbound.imap import ImapSettings

IMAP_SERVER_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "imap-server"
IMAP_ENV = "CXDESK_TEST_IMAP"
IMAP_USER = "desk"
IMAP_PASSWORD = "imap-test-password"


@dataclass
class ImapServer:
    """A Dovecot made by scripts/imap-server (``folder`` None: one started elsewhere)."""

    host: str = "127.0.0.1"
    port: int = 0
    folder: Path | None = None

    @property
    def tls_port(self) -> int:
        assert self.folder is not None, "the TLS port is known for a server started here"
        return int((self.folder / "tls-port").read_text())

    @property
    def cert_file(self) -> str:
        assert self.folder is not None, "the certificate is known for a server started here"
        return str(self.folder / "cert.pem")

    def start(self) -> None:
        assert self.folder is not None
        started = subprocess.run(
            [str(IMAP_SERVER_SCRIPT), "start", str(self.folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if started.returncode != 0:
            raise RuntimeError(
                f"Dovecot is required by the IMAP tests and could not be started "
                f"({IMAP_SERVER_SCRIPT} start): {started.stderr.strip()}\n"
                f"Install it (Debian: apt-get install dovecot-imapd), or set {IMAP_ENV} to "
                f"HOST:PORT of a running one with the user {IMAP_USER}/{IMAP_PASSWORD}."
            )
        self.host, port = started.stdout.strip().rsplit(":", 1)
        self.port = int(port)

    def stop(self) -> None:
        assert self.folder is not None
        subprocess.run(
            [str(IMAP_SERVER_SCRIPT), "stop", str(self.folder)], capture_output=True, timeout=120
        )

    def settings(self, **overrides: Any) -> ImapSettings:
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "tls": "none",
            "username": IMAP_USER,
            "password": IMAP_PASSWORD,
            "timeout": 10.0,
        }
        values.update(overrides)
        return ImapSettings(**values)

    @contextmanager
    def client(self) -> Iterator[IMAPClient]:
        """A plain connection logged in as the test user (the test's own, not the desk's)."""
        with IMAPClient(self.host, self.port, ssl=False, timeout=30) as client:
            client.login(IMAP_USER, IMAP_PASSWORD)
            yield client


@dataclass
class Mailbox:
    """One folder of the test user's, for one test."""

    server: ImapServer
    folder: str

    def settings(self, **overrides: Any) -> ImapSettings:
        return self.server.settings(**{"folder": self.folder, **overrides})

    def append(self, raw: bytes) -> None:
        with self.server.client() as client:
            client.append(self.folder, raw)

    def _search(self, *criteria: str) -> list[int]:
        with self.server.client() as client:
            client.select_folder(self.folder, readonly=True)
            return sorted(client.search(list(criteria)))

    def unseen(self) -> list[int]:
        return self._search("UNSEEN")

    def seen(self) -> list[int]:
        return self._search("SEEN")


@contextmanager
def _own_server() -> Iterator[ImapServer]:
    """A Dovecot started in a temp folder; stopped and deleted at the end. Fails the test
    (one message, no traceback) if it cannot be started."""
    folder = Path(tempfile.mkdtemp(prefix="cxdesk-imap-"))
    server = ImapServer(folder=folder)
    try:
        try:
            server.start()
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


_GIVEN_IMAP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Note CXDESK_TEST_IMAP now: each test runs with CXDESK_* variables removed."""
    config.stash[_GIVEN_IMAP] = os.environ.get(IMAP_ENV, "")


@pytest.fixture(scope="session")
def imap_server(pytestconfig: pytest.Config) -> Iterator[ImapServer]:
    """The session's Dovecot: ``CXDESK_TEST_IMAP``, or one started here."""
    given = pytestconfig.stash.get(_GIVEN_IMAP, "")
    if given:
        host, port = given.rsplit(":", 1)
        yield ImapServer(host=host, port=int(port))
        return
    with _own_server() as server:
        yield server


@pytest.fixture
def imap_mailbox(imap_server: ImapServer) -> Iterator[Mailbox]:
    """A new, empty folder of the test user's on the session's Dovecot, deleted at the end."""
    folder = f"test-{uuid.uuid4().hex[:12]}"
    with imap_server.client() as client:
        client.create_folder(folder)
    try:
        yield Mailbox(imap_server, folder)
    finally:
        with imap_server.client() as client:
            client.delete_folder(folder)


@pytest.fixture
def own_imap_server() -> Iterator[ImapServer]:
    """A Dovecot of this test's own, running, for a test that stops and restarts it."""
    with _own_server() as server:
        yield server
