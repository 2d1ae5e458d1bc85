"""The email channel: a batch of messages over one SMTP connection (aiosmtplib).

``MailSettings.load`` reads the ``[smtp]`` table of the config file, overridden by
``CXDESK_SMTP_*`` variables; the password only ever comes from ``CXDESK_SMTP_PASSWORD``.
``send_email_batch`` opens one connection (STARTTLS or TLS and login as configured), sends
every message on it and reports one ``DeliveryResult`` per message:

- a message ``mail_compose`` refuses (a line break in a header value, an address that cannot
  be parsed) is refused before anything is sent (permanent);
- a 4xx reply is transient, a 5xx reply permanent (except 530 "authentication required",
  a setting to fix);
- the server unreachable, TLS failing or the login refused: every message is transient with one
  line saying so ("SMTP login failed: ..."). Bad credentials are a setting the admin fixes, so
  the rows wait and retry rather than die;
- the connection lost or timed out while a message is on the wire: that message is transient
  and not resent in this batch (the server may have taken it; the outbox retries it later with
  the same Message-ID, so a repeat can be recognised). The channel reconnects once and goes on
  with the rest; a second loss makes the rest transient.

``before_send`` (the worker's commit of the results so far and of this message's "sending"
mark) runs on a thread of its own while MAIL FROM and RCPT TO go out, and the message's DATA
waits for it (``_GatedSMTP``): the server cannot accept a message before that commit, yet the
commit's time mostly hides behind the SMTP round trips. If it refuses, the open envelope is
dropped with the connection (QUIT), never completed.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib

from cxdesk.engine.channels import (
    DeliveryResult,
    ResultCallback,
    SendGate,
    check_keys,
    one_line,
    port_setting,
    read_setting,
    seconds_setting,
    text_setting,
)
from cxdesk.engine.channels.mail_compose import (
    EmailOut,
    MailAttachment,
    RefusedMessage,
    single_address,
)
from cxdesk.engine.channels.mail_compose import compose_email as compose
from cxdesk.errors import DeskError
from cxdesk.i18n import _

TlsMode = Literal["none", "starttls", "tls"]
TLS_MODES: tuple[TlsMode, ...] = ("none", "starttls", "tls")
DEFAULT_PORTS: dict[TlsMode, int] = {"none": 25, "starttls": 587, "tls": 465}

# Config-file key -> environment variable. The password is environment-only.
_ENV = {
    "host": "CXDESK_SMTP_HOST",
    "port": "CXDESK_SMTP_PORT",
    "username": "CXDESK_SMTP_USERNAME",
    "tls": "CXDESK_SMTP_TLS",
    "mail_from": "CXDESK_MAIL_FROM",
    "reply_to": "CXDESK_MAIL_REPLY_TO",
    "timeout": "CXDESK_SMTP_TIMEOUT",
}
_SECRETS = {"password": "CXDESK_SMTP_PASSWORD"}


@dataclass(frozen=True)
class MailSettings:
    """Where and how to send email."""

    host: str = "localhost"
    port: int = 25
    username: str = ""
    password: str = ""
    tls: TlsMode = "none"
    """``none`` (plain), ``starttls`` (upgrade after connecting) or ``tls`` (TLS from the start)."""
    mail_from: str = ""
    """The From of messages that name none, e.g. ``Ask the Experts <help@example.com>``."""
    reply_to: str = ""
    """Where customers' answers go (a mailbox the desk reads: IMAP or an MTA piping to
    ``cxdesk mail import``), for messages that name none; empty: the From address."""
    timeout: float = 30.0
    """Seconds for connecting and for each SMTP command."""

    @classmethod
    def load(cls, file_values: Mapping[str, object]) -> MailSettings:
        """The config file's ``[smtp]`` table, overridden by the environment."""
        check_keys(file_values, table="smtp", known=set(_ENV), secrets=_SECRETS)
        tls = text_setting(read_setting(file_values, "tls", _ENV["tls"]), name="smtp.tls")
        tls = tls.lower() or "none"
        if tls not in TLS_MODES:
            raise DeskError(
                _("Setting smtp.tls must be one of none, starttls, tls, not {tls!r}").format(
                    tls=tls
                )
            )
        mode: TlsMode = tls
        return cls(
            host=text_setting(read_setting(file_values, "host", _ENV["host"]), name="smtp.host")
            or "localhost",
            port=_port(read_setting(file_values, "port", _ENV["port"]), DEFAULT_PORTS[mode]),
            username=text_setting(
                read_setting(file_values, "username", _ENV["username"]), name="smtp.username"
            ),
            password=os.environ.get(_SECRETS["password"], ""),
            tls=mode,
            mail_from=text_setting(
                read_setting(file_values, "mail_from", _ENV["mail_from"]), name="smtp.mail_from"
            ),
            reply_to=text_setting(
                read_setting(file_values, "reply_to", _ENV["reply_to"]), name="smtp.reply_to"
            ),
            timeout=seconds_setting(
                read_setting(file_values, "timeout", _ENV["timeout"]),
                name="smtp.timeout",
                default=cls.timeout,
            ),
        )


def _port(value: object | None, default: int) -> int:
    return port_setting(value, name="smtp.port", default=default)


def compose_email(settings: MailSettings, message: EmailOut) -> EmailMessage:
    """The message as it goes on the wire (``mail_compose``), with the settings' addresses."""
    return compose(message, mail_from=settings.mail_from, reply_to=settings.reply_to)


class _GateClosed(Exception):
    """``before_send`` refused the message whose DATA was about to go out."""


class _GatedSMTP(aiosmtplib.SMTP):
    """An SMTP client whose DATA first awaits ``gate`` (set per message): MAIL FROM and
    RCPT TO go out while the gate is being decided; the message content only once it said
    yes. ``aiosmtplib.SMTP.sendmail`` calls ``data`` after the envelope, so this is the one
    point between envelope and content it offers."""

    gate: Awaitable[bool] | None = None

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        if self.gate is not None and not await self.gate:
            raise _GateClosed
        return await super().data(message, **kwargs)


class _Unavailable(Exception):
    """The SMTP server cannot be used now (unreachable, TLS, login); ``str()`` says why."""


async def _connect(settings: MailSettings) -> _GatedSMTP:
    where = f"{settings.host}:{settings.port}"
    if settings.username and not settings.password:
        raise _Unavailable(
            f"SMTP login failed as {settings.username!r} on {where}: "
            "CXDESK_SMTP_PASSWORD is not set"
        )
    smtp = _GatedSMTP(
        hostname=settings.host,
        port=settings.port,
        timeout=settings.timeout,
        use_tls=settings.tls == "tls",
        start_tls=settings.tls == "starttls",
    )
    try:
        await smtp.connect()
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise _Unavailable(f"SMTP TLS with {where} failed: {one_line(exc)}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        message = f"{exc.code} {one_line(exc.message)}"
        raise _Unavailable(f"SMTP server {where} refused the connection: {message}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        if isinstance(exc.__cause__, ssl.SSLError):  # TLS from the start: wrapped by aiosmtplib
            raise _Unavailable(f"SMTP TLS with {where} failed: {one_line(exc.__cause__)}") from exc
        raise _Unavailable(f"SMTP server {where} unreachable: {one_line(exc)}") from exc
    if settings.username:
        try:
            await smtp.login(settings.username, settings.password)
        except aiosmtplib.SMTPResponseException as exc:
            await _close(smtp)
            raise _Unavailable(
                f"SMTP login failed as {settings.username!r} on {where}: "
                f"{exc.code} {one_line(exc.message)}"
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _close(smtp)
            raise _Unavailable(
                f"SMTP login failed as {settings.username!r} on {where}: {one_line(exc)}"
            ) from exc
    return smtp


async def _close(smtp: aiosmtplib.SMTP) -> None:
    """QUIT politely; a connection that is already gone is simply dropped."""
    try:
        if smtp.is_connected:
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


class _Composed:
    """The batch's messages composed one ahead: ``ahead()`` composes the next one while the
    current one's gate (its commit, on a thread) runs, instead of after its DATA."""

    def __init__(self, settings: MailSettings, messages: Sequence[EmailOut]):
        self._settings = settings
        self._messages = iter(messages)
        self._next: tuple[EmailOut, EmailMessage | RefusedMessage] | None = None

    def __iter__(self) -> Iterator[tuple[EmailOut, EmailMessage | RefusedMessage]]:
        while (item := self._take()) is not None:
            yield item

    def ahead(self) -> None:
        if self._next is None:
            self._next = self._compose()

    def _take(self) -> tuple[EmailOut, EmailMessage | RefusedMessage] | None:
        item, self._next = self._next, None
        return item if item is not None else self._compose()

    def _compose(self) -> tuple[EmailOut, EmailMessage | RefusedMessage] | None:
        message = next(self._messages, None)
        if message is None:
            return None
        try:
            return message, compose_email(self._settings, message)
        except RefusedMessage as exc:
            return message, exc


async def send_email_batch(
    settings: MailSettings,
    messages: Sequence[EmailOut],
    *,
    on_result: ResultCallback | None = None,
    before_send: SendGate | None = None,
) -> list[DeliveryResult]:
    """Send every message over one SMTP connection; one result per message, in order, up to
    the first one ``before_send`` refuses (that one and the rest get none)."""
    results: list[DeliveryResult] = []

    def report(message: EmailOut, error: str | None, *, permanent: bool = False) -> None:
        ok = error is None
        result = DeliveryResult(
            message.outbox_id, ok, message.message_id if ok else None, error, permanent
        )
        results.append(result)
        if on_result is not None:
            on_result(result)

    smtp: _GatedSMTP | None = None
    down: str | None = None  # why the rest of the batch cannot be sent now
    connects = 0  # the first connection and at most one reconnect per batch
    gates = ThreadPoolExecutor(1, thread_name_prefix="cxdesk-send-gate")
    composed = _Composed(settings, messages)
    try:
        for message, email in composed:
            if isinstance(email, RefusedMessage):
                report(message, str(email), permanent=email.permanent)
                continue
            if smtp is not None and not smtp.is_connected:  # closed by the server meanwhile
                smtp.close()
                smtp = None
            if smtp is None and down is None:
                if connects == 2:
                    down = "SMTP connection lost twice in one batch; the rest waits for a retry"
                else:
                    connects += 1
                    try:
                        smtp = await _connect(settings)
                    except _Unavailable as exc:
                        down = str(exc)
            if down is not None or smtp is None:
                report(message, down)
                continue
            sender = single_address(email, "From").addr_spec
            recipient = single_address(email, "To").addr_spec
            gate: asyncio.Future[bool] | None = None
            if before_send is not None:
                loop = asyncio.get_running_loop()
                gate = loop.run_in_executor(gates, before_send, message.outbox_id)
                composed.ahead()  # while the gate's commit runs
            smtp.gate = gate
            try:
                await smtp.send_message(email, sender=sender, recipients=[recipient])
            except _GateClosed:
                break
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await _settled(gate)
                refusal = exc.recipients[0]
                report(message, _reply_error(refusal), permanent=refusal.code >= 500)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as e:
                await _settled(gate)
                what = "timed out" if isinstance(e, TimeoutError) else "lost"
                report(message, f"SMTP connection {what} while sending: {one_line(e)}")
                smtp.close()
                smtp = None
            except aiosmtplib.SMTPResponseException as exc:
                await _settled(gate)
                # 530: the server wants a login the settings do not give; the admin fixes that.
                report(message, _reply_error(exc), permanent=exc.code >= 500 and exc.code != 530)
            except (aiosmtplib.SMTPNotSupported, ValueError) as exc:
                await _settled(gate)
                report(message, f"refused: {one_line(exc)}", permanent=True)
            except aiosmtplib.SMTPException as exc:
                await _settled(gate)
                report(message, f"SMTP error: {one_line(exc)}")
            else:
                report(message, None)
    finally:
        if smtp is not None:
            await _close(smtp)
        gates.shutdown()
    return results


async def _settled(gate: asyncio.Future[bool] | None) -> None:
    """Wait for a gate the failed send did not reach (its commit must end before the next
    one starts); a gate that refused changes nothing now, one that raised raises."""
    if gate is not None:
        await gate


def _reply_error(exc: aiosmtplib.SMTPResponseException) -> str:
    kind = "refused" if exc.code >= 500 else "deferred"
    hint = " (set CXDESK_SMTP_USERNAME and CXDESK_SMTP_PASSWORD)" if exc.code == 530 else ""
    return f"SMTP {kind}: {exc.code} {one_line(exc.message)}{hint}"


__all__ = [
    "EmailOut",
    "MailAttachment",
    "MailSettings",
    "RefusedMessage",
    "compose_email",
    "send_email_batch",
]
