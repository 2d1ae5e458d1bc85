"""Customer email from an IMAP mailbox: the ``[imap]`` settings, a fetch pass, and the loop
that waits for new mail (IDLE when the server offers it, else polling) and outlives outages.

``ImapSettings.load`` reads the ``[imap]`` table of the config file, overridden by
``CXDESK_IMAP_*`` variables; the password only ever comes from ``CXDESK_IMAP_PASSWORD``.

A pass (``fetch_pass``) takes the folder's UNSEEN, undeleted messages by UID, oldest first,
and for each: fetches it with ``BODY.PEEK[]`` (which leaves it unseen), hands its bytes to the
handler (``mailgate.receive_email`` bound to the desk's engine), and only once the handler has
returned marks it ``\\Seen``. So a crash in between fetches the message again next time, which
changes nothing since ``receive_email`` handles each Message-ID once. A message the handler
refuses (``RefusedMail``) is marked seen too and reported with its one-line reason: retrying
cannot help it. Any other failure (the desk database down, a bug) ends the pass at that
message, which stays unseen with every one after it, for the next pass.

``MailboxFetcher.run_forever`` connects, passes, then waits: IDLE (RFC 2177; started again
every ``REIDLE_S``, under the 29 minutes after which a server may drop an idle client) or, on
a server without IDLE, a ``poll`` wait. A failure of any kind is said once (``on_trouble``),
the mailbox is opened again after the delivery worker's growing wait with jitter
(``worker.retry_wait``), however long it takes, and the first pass that succeeds again is
said once (``on_recovery``).

The IMAP library is imapclient, imported only when a mailbox is opened (see pyproject.toml).
"""

from __future__ import annotations

import ast
import imaplib
import logging
import os
import re
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING, Any

from cxdesk.config import Settings
from cxdesk.engine.channels import (
    check_keys,
    one_line,
    port_setting,
    read_setting,
    seconds_setting,
    text_setting,
)
from cxdesk.engine.inbound.mailgate import Received, RefusedMail
from cxdesk.errors import DESK_UNREACHABLE, DeskError
from cxdesk.store.db import is_unreachable, unreachable_reason
from cxdesk.text import printable

if TYPE_CHECKING:
    from imapclient import IMAPClient

logger = logging.getLogger(__name__)

TLS_MODES = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 143, "starttls": 143, "tls": 993}
REIDLE_S = 25 * 60.0
IDLE_TICK_S = 1.0
"""How often a client in IDLE looks at ``stop``: the longest a stop waits."""

_ENV = {
    "host": "CXDESK_IMAP_HOST",
    "port": "CXDESK_IMAP_PORT",
    "tls": "CXDESK_IMAP_TLS",
    "username": "CXDESK_IMAP_USERNAME",
    "folder": "CXDESK_IMAP_FOLDER",
    "timeout": "CXDESK_IMAP_TIMEOUT",
    "poll": "CXDESK_IMAP_POLL",
}
_SECRETS = {"password": "CXDESK_IMAP_PASSWORD"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOVECOT_TIMING = re.compile(r"\s*\(\d+\.\d+( \+ \d+\.\d+)* secs\)\.?$")

Handler = Callable[[bytes], Received]
"""One raw message in, handled once (``receive_email`` bound to an engine); raises
``RefusedMail`` for a message that cannot be handled."""


@dataclass(frozen=True)
class ImapSettings:
    """Which mailbox to fetch customer email from."""

    host: str = ""
    """Empty: IMAP is not configured (``cxdesk worker`` then fetches nothing)."""
    port: int = DEFAULT_PORTS["tls"]
    tls: str = "tls"
    """``tls`` (TLS from the start, port 993), ``starttls`` (upgrade after connecting, 143)
    or ``none`` (plain text, 143: a loopback server only)."""
    username: str = ""
    password: str = field(default="", repr=False)
    folder: str = "INBOX"
    timeout: float = 30.0
    """Seconds for connecting and for each IMAP command."""
    poll: float = 60.0
    """Seconds between looks at a mailbox whose server does not offer IDLE."""

    @classmethod
    def load(cls, file_values: Mapping[str, object]) -> ImapSettings:
        """The config file's ``[imap]`` table, overridden by the environment."""
        check_keys(file_values, table="imap", known=set(_ENV), secrets=_SECRETS)

        def text(key: str) -> str:
            value = text_setting(read_setting(file_values, key, _ENV[key]), name=f"imap.{key}")
            if _CONTROL.search(value):
                raise DeskError(f"Setting imap.{key} must be one line of printable text")
            return value

        tls = text("tls").lower() or "tls"
        if tls not in TLS_MODES:
            raise DeskError(f"Setting imap.tls must be one of none, starttls, tls, not {tls!r}")

        def seconds(key: str, default: float) -> float:
            value = read_setting(file_values, key, _ENV[key])
            return seconds_setting(value, name=f"imap.{key}", default=default)

        return cls(
            host=text("host"),
            port=port_setting(
                read_setting(file_values, "port", _ENV["port"]),
                name="imap.port",
                default=DEFAULT_PORTS[tls],
            ),
            tls=tls,
            username=text("username"),
            password=os.environ.get(_SECRETS["password"], ""),
            folder=text("folder") or "INBOX",
            timeout=seconds("timeout", cls.timeout),
            poll=seconds("poll", cls.poll),
        )

    @classmethod
    def of(cls, settings: Settings) -> ImapSettings:
        """From the desk's settings (their ``[imap]`` table and the environment)."""
        table = settings.extra.get("imap", {})
        if not isinstance(table, dict):
            raise DeskError("Setting imap must be a table ([imap] in the config file)")
        return cls.load(table)

    @property
    def configured(self) -> bool:
        return bool(self.host)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def check(self) -> None:
        """One line saying what is missing for fetching, if anything is."""
        if not self.host:
            raise DeskError(
                "IMAP is not configured: set CXDESK_IMAP_HOST (or host in the config file's "
                "[imap] table), CXDESK_IMAP_USERNAME and CXDESK_IMAP_PASSWORD"
            )
        if not self.username:
            raise DeskError("No IMAP username: set CXDESK_IMAP_USERNAME (or [imap] username)")
        if not self.password:
            raise DeskError("No IMAP password: set CXDESK_IMAP_PASSWORD")


class MailboxError(DeskError):
    """The mailbox cannot be used: the server unreachable, TLS failing, the login refused, the
    folder missing, the connection lost. ``str()`` is one line."""


def server_text(error: BaseException) -> str:
    """The server's words in an imaplib/imapclient error, as one line without Python's
    bytes quoting or Dovecot's timing note."""
    text = str(error)
    if text[:2] in ("b'", 'b"'):
        with suppress(ValueError, SyntaxError):
            text = ast.literal_eval(text).decode("utf-8", "replace")
    return _DOVECOT_TIMING.sub("", one_line(text)) or type(error).__name__


@contextmanager
def talking_to(settings: ImapSettings, doing: str) -> Iterator[None]:
    """Turn what the network or the server raises while ``doing`` (``connecting``: before
    there is a connection) into a ``MailboxError``."""
    try:
        yield
    except MailboxError:
        raise
    except ssl.SSLError as error:
        raise MailboxError(f"TLS with the IMAP server {settings.address} failed: {error}") from None
    except (OSError, imaplib.IMAP4.error) as error:
        if doing == "connecting":
            line = f"Cannot reach the IMAP server {settings.address}: {server_text(error)}"
        else:
            line = f"IMAP server {settings.address}: {doing} failed: {server_text(error)}"
        raise MailboxError(line) from error


@contextmanager
def open_mailbox(settings: ImapSettings) -> Iterator[IMAPClient]:
    """A client logged in with the folder selected; logged out at the end."""
    from imapclient import IMAPClient
    from imapclient.exceptions import CapabilityError, LoginError

    settings.check()
    context = ssl.create_default_context() if settings.tls != "none" else None
    with talking_to(settings, "connecting"):
        client = IMAPClient(
            settings.host,
            settings.port,
            ssl=settings.tls == "tls",
            ssl_context=context,
            timeout=settings.timeout,
        )
    try:
        with talking_to(settings, "logging in"):
            if settings.tls == "starttls":
                try:
                    client.starttls(context)
                except CapabilityError:
                    raise MailboxError(
                        f"The IMAP server {settings.address} does not offer STARTTLS "
                        "(set CXDESK_IMAP_TLS to tls or none)"
                    ) from None
            try:
                client.login(settings.username, settings.password)
            except LoginError as error:
                raise MailboxError(
                    f"IMAP login to {settings.address} as {settings.username} refused: "
                    f"{server_text(error)} (check CXDESK_IMAP_USERNAME and CXDESK_IMAP_PASSWORD)"
                ) from error
        with talking_to(settings, "opening the folder"):
            try:
                client.select_folder(settings.folder)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as error:
                raise MailboxError(
                    f"Cannot open the IMAP folder {settings.folder!r} on {settings.address}: "
                    f"{server_text(error).removeprefix('select failed: ')}"
                ) from error
    except BaseException:
        _close(client)
        raise
    try:
        yield client
    finally:
        _close(client)


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception as error:  # already closed: nothing left to do
            logger.debug("IMAP connection not closed cleanly: %s", error)


@dataclass
class FetchReport:
    """What one pass did."""

    handled: list[tuple[str, Received]] = field(default_factory=list)
    """Each handled message: who it is (``describe``) and what became of it."""
    refused: list[str] = field(default_factory=list)
    """One line per message the handler refused (marked seen, not retried)."""

    def line(self, folder: str) -> str:
        refused = f", {len(self.refused)} refused" if self.refused else ""
        return f"fetched {len(self.handled)} message(s) from {folder}{refused}"


def describe(uid: int, raw: bytes) -> str:
    """``message 12 (<id@host> from a@example.com)``: one printable line naming a message."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
    said = " from ".join(
        one_line(headers.get(name, "")) for name in ("Message-ID", "From") if headers.get(name)
    )
    return printable(f"message {uid}" + (f" ({said})" if said else ""), lines=False)[:300]


def fetch_pass(
    client: IMAPClient,
    settings: ImapSettings,
    handler: Handler,
    *,
    stop: threading.Event | None = None,
) -> FetchReport:
    """Hand each unseen message to ``handler`` once, oldest first; see the module docstring."""
    report = FetchReport()
    with talking_to(settings, "searching the folder"):
        uids = sorted(client.search(["UNSEEN", "UNDELETED"]))
    for uid in uids:
        if stop is not None and stop.is_set():
            break
        with talking_to(settings, "fetching a message"):
            raw = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]")
        if raw is None:  # expunged by another client since the search
            continue
        try:
            received = handler(raw)
        except RefusedMail as refused:
            line = f"{describe(uid, raw)}: {one_line(refused)}"
            logger.warning("refused %s", line)
            report.refused.append(line)
        else:
            report.handled.append((describe(uid, raw), received))
        with talking_to(settings, "marking a message seen"):
            client.add_flags([uid], [b"\\Seen"], silent=True)
    return report


def wait_for_mail(
    client: IMAPClient,
    settings: ImapSettings,
    stop: threading.Event,
    *,
    on_idle: Callable[[], None] | None = None,
) -> None:
    """Return once the server says the folder changed, ``REIDLE_S`` went by, or ``stop`` is
    set (IDLE); ``MailboxError`` if the connection ends meanwhile."""
    with talking_to(settings, "IDLE"):
        client.idle()
        if on_idle is not None:
            on_idle()
        started = time.monotonic()
        while not stop.is_set() and time.monotonic() - started < REIDLE_S:
            sock: Any = client.socket()
            pending = getattr(sock, "pending", lambda: 0)()
            if not pending and not select.select([sock], [], [], IDLE_TICK_S)[0]:
                continue
            responses = client.idle_check(timeout=0)
            if not responses or any(r[:1] == (b"BYE",) for r in responses):
                said = " ".join(server_text(r[1]) for r in responses if len(r) > 1)
                raise MailboxError(
                    f"The IMAP server {settings.address} closed the connection"
                    + (f": {said}" if said else "")
                )
            if any(not (isinstance(r[0], bytes) and r[0] == b"OK") for r in responses):
                break  # EXISTS, RECENT, FETCH, EXPUNGE...: look at the folder again
        client.idle_done()


@dataclass
class FetchFailure:
    """A run of failed attempts, for the one line said when it starts and when it ends."""

    error: Exception
    since: float
    failures: int = 0

    @property
    def kind(self) -> str:
        if isinstance(self.error, MailboxError):
            return "mailbox"
        return "database" if is_unreachable(self.error) else "bug"

    @property
    def expected(self) -> bool:
        """An outage (mailbox or desk database) rather than a bug (worth a traceback)."""
        return self.kind != "bug"

    def line(self) -> str:
        if self.kind == "mailbox":
            return f"IMAP mailbox unreachable, retrying: {self.error}"
        if self.kind == "database":
            return f"mail fetch: {DESK_UNREACHABLE}: {unreachable_reason(self.error)}"
        return f"mail fetch failed, retrying: {one_line(self.error)}"

    def recovery_line(self) -> str:
        took = time.monotonic() - self.since
        what = {"mailbox": "IMAP mailbox reachable again", "database": "desk database reachable"}
        return f"{what.get(self.kind, 'mail fetch succeeded')} after {took:.0f} s; fetching"


def log_trouble(failure: FetchFailure) -> None:
    logger.warning("%s", failure.line(), exc_info=None if failure.expected else failure.error)


def log_recovery(failure: FetchFailure) -> None:
    logger.warning("%s", failure.recovery_line())


class MailboxFetcher:
    """Fetches one mailbox's new messages into the desk through ``handler``."""

    def __init__(self, settings: ImapSettings, handler: Handler, *, idle: bool = True):
        """``idle``: use IDLE when the server offers it (False: always poll)."""
        self.settings = settings
        self.handler = handler
        self.idle = idle

    def fetch_once(self) -> FetchReport:
        """One pass over what is in the folder now."""
        with open_mailbox(self.settings) as client:
            return fetch_pass(client, self.settings, self.handler)

    def run_forever(
        self,
        stop: threading.Event,
        *,
        on_trouble: Callable[[FetchFailure], None] = log_trouble,
        on_recovery: Callable[[FetchFailure], None] = log_recovery,
        after_pass: Callable[[FetchReport], None] | None = None,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        """Pass, wait for mail, pass... until ``stop`` is set; see the module docstring.
        ``on_idle`` hears each time the client has entered IDLE (the tests wait on it)."""
        from cxdesk.engine.worker import retry_wait

        failure: FetchFailure | None = None
        while not stop.is_set():
            try:
                with open_mailbox(self.settings) as client:
                    use_idle = self.idle and client.has_capability("IDLE")
                    while not stop.is_set():
                        report = fetch_pass(client, self.settings, self.handler, stop=stop)
                        if failure is not None:
                            on_recovery(failure)
                            failure = None
                        if after_pass is not None:
                            after_pass(report)
                        if stop.is_set():
                            break
                        if use_idle:
                            wait_for_mail(client, self.settings, stop, on_idle=on_idle)
                        else:
                            stop.wait(self.settings.poll)
            except Exception as error:
                new = FetchFailure(error, time.monotonic() if failure is None else failure.since)
                if failure is None or failure.kind != new.kind:
                    failure = new
                    on_trouble(failure)
                failure.failures += 1
                stop.wait(retry_wait(failure.failures))
