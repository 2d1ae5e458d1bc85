"""Customer email from an IMAP mailbox: opening it, a fetch pass, and the loop that waits for
new mail (IDLE when the server offers it, else polling) and outlives outages.

The settings (``ImapSettings``, the ``[imap]`` table) are in ``imap_settings``.

A pass (``fetch_pass``) takes the folder's UNSEEN, undeleted messages by UID, oldest first,
and for each: fetches it with ``BODY.PEEK[]`` (which leaves it unseen), hands its bytes to the
handler (``mailgate.receive_email`` bound to the desk's engine), and only once the handler has
returned marks it ``\\Seen``. So a crash in between fetches the message again next time, which
changes nothing since ``receive_email`` handles each Message-ID once. A message the handler
refuses (``RefusedMail``) is marked seen too and reported with its one-line reason: retrying
cannot help it. Any other failure (the desk database down, a bug) ends the pass at that
message, which stays unseen with every one after it, for the next pass. A message that fails
``SET_ASIDE_AFTER`` times by a bug (not an outage, not a ``DeskError`` such as no inbound
team, which fail every message alike) is set aside: left unseen in the mailbox, reported once
with its error, and skipped by this fetcher's later passes, so one poison message does not
hold back the mail behind it for ever; it is tried again when the fetcher is restarted (or
``cxdesk mail import`` takes it from the logged line's Message-ID).

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
import hashlib
import logging
import re
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING, Any

from cxdesk.engine.channels import one_line
from cxdesk.engine.inbound.imap_settings import ImapSettings
from cxdesk.engine.inbound.mailgate import Received, RefusedMail
from cxdesk.errors import DESK_UNREACHABLE, DeskError
from cxdesk.i18n import _, ngettext
from cxdesk.store.db import is_unreachable, unreachable_reason
from cxdesk.text import printable

if TYPE_CHECKING:
    from imapclient import IMAPClient

logger = logging.getLogger(__name__)

REIDLE_S = 25 * 60.0
IDLE_TICK_S = 1.0
"""How often a client in IDLE looks at ``stop``: the longest a stop waits."""

SET_ASIDE_AFTER = 3
"""Attempts failed by a bug after which a message is set aside (see the module docstring)."""

_DOVECOT_TIMING = re.compile(r"\s*\(\d+\.\d+( \+ \d+\.\d+)* secs\)\.?$")

Handler = Callable[[bytes], Received]
"""One raw message in, handled once (``receive_email`` bound to an engine); raises
``RefusedMail`` for a message that cannot be handled."""


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
    import imaplib  # here: ~10 ms that `cxdesk --help` need not pay

    try:
        yield
    except MailboxError:
        raise
    except ssl.SSLError as error:
        hint = (
            " (no TLS on this port: check CXDESK_IMAP_PORT and CXDESK_IMAP_TLS)"
            if "WRONG_VERSION_NUMBER" in str(error)
            else ""
        )
        raise MailboxError(
            f"TLS with the IMAP server {settings.address} failed: {error}{hint}"
        ) from None
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
    from imapclient.exceptions import (
        CapabilityError,
        IMAPClientAbortError,
        IMAPClientError,
        LoginError,
    )

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
            except IMAPClientAbortError:
                raise
            except IMAPClientError as error:
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
    set_aside: list[str] = field(default_factory=list)
    """One line per message set aside in this pass (left unseen, see ``SET_ASIDE_AFTER``)."""

    def line(self, folder: str) -> str:
        """The pass's summary for the person who ran ``cxdesk mail fetch``, in their
        language ("fetched 3 messages from INBOX, 1 refused")."""
        n = len(self.handled)
        line = ngettext(
            "fetched {n} message from {folder}", "fetched {n} messages from {folder}", n
        ).format(n=n, folder=folder)
        if self.refused:
            refused = len(self.refused)
            line += _(", ") + ngettext("{n} refused", "{n} refused", refused).format(n=refused)
        if self.set_aside:
            aside = len(self.set_aside)
            line += _(", ") + ngettext(
                "{n} set aside after failing", "{n} set aside after failing", aside
            ).format(n=aside)
        return line


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
    failures: dict[bytes, int] | None = None,
) -> FetchReport:
    """Hand each unseen message to ``handler`` once, oldest first; see the module docstring.

    ``failures``: attempts failed by a bug so far, by digest of the message (kept by the
    caller across passes); None: every failure ends the pass."""
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
        digest = hashlib.sha256(raw).digest()
        if failures is not None and failures.get(digest, 0) >= SET_ASIDE_AFTER:
            continue
        try:
            received = handler(raw)
        except RefusedMail as refused:
            line = f"{describe(uid, raw)}: {one_line(refused)}"
            logger.warning("refused %s", line)
            report.refused.append(line)
        except Exception as error:
            if failures is None or isinstance(error, DeskError) or is_unreachable(error):
                raise
            failures[digest] = failures.get(digest, 0) + 1
            if failures[digest] < SET_ASIDE_AFTER:
                raise
            line = (
                f"{describe(uid, raw)}: set aside, left unseen, after {SET_ASIDE_AFTER} "
                f"failed attempts: {one_line(error)}"
            )
            logger.error("%s", line, exc_info=error)
            report.set_aside.append(line)
            continue
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
    def unreachable(self) -> bool:
        """The mailbox or the desk database could not be used (an outage), rather than a bug
        (worth a traceback)."""
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
    logger.warning("%s", failure.line(), exc_info=None if failure.unreachable else failure.error)


def log_recovery(failure: FetchFailure) -> None:
    logger.warning("%s", failure.recovery_line())


class MailboxFetcher:
    """Fetches one mailbox's new messages into the desk through ``handler``."""

    def __init__(self, settings: ImapSettings, handler: Handler, *, idle: bool = True):
        """``idle``: use IDLE when the server offers it (False: always poll)."""
        self.settings = settings
        self.handler = handler
        self.idle = idle
        self.failures: dict[bytes, int] = {}
        """Attempts failed by a bug, by message digest (``fetch_pass``'s ``failures``)."""

    def fetch_once(self) -> FetchReport:
        """One pass over what is in the folder now."""
        with open_mailbox(self.settings) as client:
            return fetch_pass(client, self.settings, self.handler, failures=self.failures)

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
                        report = fetch_pass(
                            client, self.settings, self.handler, stop=stop, failures=self.failures
                        )
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
