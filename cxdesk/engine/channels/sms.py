"""The SMS channel: Twilio's Messages API through the official ``twilio`` client.

``SmsSettings.load`` reads the ``[twilio]`` table of the config file, overridden by
``TWILIO_ACCOUNT_SID``, ``CXDESK_SMS_FROM``, ``CXDESK_SMS_MESSAGING_SERVICE_SID`` and
``CXDESK_TWILIO_API_URL``; the auth token only ever comes from ``TWILIO_AUTH_TOKEN``. The API
URL (default Twilio's own) lets a desk go through a proxy and the tests use a contract mock:
the client is pointed at it through ``client.api.base_url``.

``send_sms_batch`` raises ``DeskError`` before sending anything when SMS is not configured,
and otherwise reports one ``DeliveryResult`` per message:

- accepted: ``provider_id`` is the message SID (``SM...``);
- HTTP 429 (Twilio error 20429): transient, and the rest of the batch is not tried now;
- HTTP 401 (bad account SID or token): transient, like an SMTP login failure: a setting the
  admin fixes, not a fault of the message;
- any other 4xx: permanent (Twilio refused this message: bad number...); an empty body or
  phone number is refused here, before asking Twilio;
- 5xx, a timeout or no connection: transient; after a connection failure the rest of the batch
  is not tried now. Twilio has no idempotency key, so a timeout after Twilio accepted a message
  can still send it twice on retry.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from cxdesk.engine.channels import (
    DeliveryResult,
    ResultCallback,
    check_keys,
    one_line,
    read_setting,
    seconds_setting,
    text_setting,
)
from cxdesk.errors import DeskError

TWILIO_API_URL = "https://api.twilio.com"

# Config-file key -> environment variable. The auth token is environment-only.
_ENV = {
    "account_sid": "TWILIO_ACCOUNT_SID",
    "from_number": "CXDESK_SMS_FROM",
    "messaging_service_sid": "CXDESK_SMS_MESSAGING_SERVICE_SID",
    "api_url": "CXDESK_TWILIO_API_URL",
    "timeout": "CXDESK_TWILIO_TIMEOUT",
}
_SECRETS = {"auth_token": "TWILIO_AUTH_TOKEN"}


@dataclass(frozen=True)
class SmsSettings:
    """The Twilio account and sender."""

    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""
    """The sender (E.164 number, short code or alphanumeric ID); or use a messaging service."""
    messaging_service_sid: str = ""
    """``MG...``: Twilio picks the sender from the service's pool (used when no from_number)."""
    api_url: str = TWILIO_API_URL
    timeout: float = 30.0
    """Seconds for each HTTP request."""

    @classmethod
    def load(cls, file_values: Mapping[str, object]) -> SmsSettings:
        """The config file's ``[twilio]`` table, overridden by the environment."""
        check_keys(file_values, table="twilio", known=set(_ENV), secrets=_SECRETS)
        values = {
            key: text_setting(read_setting(file_values, key, variable), name=f"twilio.{key}")
            for key, variable in _ENV.items()
            if key != "timeout"
        }
        api_url = values.pop("api_url").rstrip("/") or TWILIO_API_URL
        if not api_url.startswith(("https://", "http://")):
            raise DeskError(f"Setting twilio.api_url must be an http(s) URL, not {api_url!r}")
        timeout = seconds_setting(
            read_setting(file_values, "timeout", _ENV["timeout"]),
            name="twilio.timeout",
            default=cls.timeout,
        )
        return cls(
            **values,
            auth_token=os.environ.get(_SECRETS["auth_token"], ""),
            api_url=api_url,
            timeout=timeout,
        )

    def check(self) -> None:
        """``DeskError`` naming every missing setting, if SMS cannot be sent."""
        missing = [
            variable
            for variable, value in (
                ("TWILIO_ACCOUNT_SID", self.account_sid),
                ("TWILIO_AUTH_TOKEN", self.auth_token),
                (
                    "CXDESK_SMS_FROM (or CXDESK_SMS_MESSAGING_SERVICE_SID)",
                    self.from_number or self.messaging_service_sid,
                ),
            )
            if not value
        ]
        if missing:
            raise DeskError(f"SMS is not configured: set {', '.join(missing)}")


@dataclass(frozen=True)
class SmsOut:
    """One text message to send, as the outbox row says it."""

    outbox_id: int
    to: str
    body: str


class _RecordingHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, keeping the last response to explain errors it does not parse."""

    last: Response | None = None

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self.last = None
        self.last = super().request(*args, **kwargs)
        return self.last


def twilio_client(settings: SmsSettings) -> Client:
    """A client for ``settings`` (checked first), sending to ``settings.api_url``."""
    settings.check()
    client = Client(
        username=settings.account_sid,
        password=settings.auth_token,
        account_sid=settings.account_sid,
        http_client=_RecordingHttpClient(timeout=settings.timeout),
    )
    client.api.base_url = settings.api_url
    if settings.api_url != TWILIO_API_URL:
        # TWILIO_EDGE / TWILIO_REGION would rewrite the host of our own URL.
        client.edge = client.region = None
    return client


def send_sms(settings: SmsSettings, message: SmsOut) -> DeliveryResult:
    """Send one message; ``DeskError`` if SMS is not configured."""
    return send_sms_batch(settings, [message])[0]


def send_sms_batch(
    settings: SmsSettings,
    messages: Sequence[SmsOut],
    *,
    on_result: ResultCallback | None = None,
    deadline: float | None = None,
) -> list[DeliveryResult]:
    """Send each message with one client (one pooled HTTP session); one result each, in order.

    ``deadline`` (a ``time.monotonic()`` value): no message is started after it; the rest
    get no result, for the caller to give back (the worker's lease is running out).
    """
    client = twilio_client(settings)
    sender = (
        {"from_": settings.from_number}
        if settings.from_number
        else {"messaging_service_sid": settings.messaging_service_sid}
    )
    results: list[DeliveryResult] = []
    stopped: str | None = None  # why the rest of the batch is not tried now
    for message in messages:
        if deadline is not None and time.monotonic() >= deadline:
            break
        if stopped is not None:
            result = DeliveryResult(message.outbox_id, False, None, stopped, False)
        elif not message.to.strip() or len(message.to.splitlines()) > 1:
            error = f"refused: bad phone number {message.to!r}"
            result = DeliveryResult(message.outbox_id, False, None, error, True)
        elif not message.body.strip():  # Twilio refuses it (error 21602); the contract allows it
            result = DeliveryResult(message.outbox_id, False, None, "refused: empty body", True)
        else:
            result, stop = _send_one(client, settings, message, sender)
            if stop:
                stopped = f"not tried after: {result.error}"
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _send_one(
    client: Client, settings: SmsSettings, message: SmsOut, sender: dict[str, str]
) -> tuple[DeliveryResult, bool]:
    """The result of one ``messages.create``, and whether the rest of the batch should wait."""
    try:
        created = client.messages.create(to=message.to, body=message.body, **sender)
    except (TwilioRestException, TwilioServiceException) as exc:
        status = int(exc.status)
        error = _twilio_error(client, exc)
        if status == 429:
            return DeliveryResult(message.outbox_id, False, None, error, False), True
        permanent = 400 <= status < 500 and status != 401
        return DeliveryResult(message.outbox_id, False, None, error, permanent), False
    except (requests.RequestException, TwilioException) as exc:
        if isinstance(exc, requests.Timeout):
            reason = f"no answer in {settings.timeout:g} s"
        else:  # requests nests the cause in a long repr; the errno text says it all
            errno = re.search(r"\[Errno -?\d+\] [^\"')]+", str(exc))
            reason = errno.group(0) if errno else one_line(exc)
        error = f"Twilio API {settings.api_url} unreachable: {reason}"
        return DeliveryResult(message.outbox_id, False, None, error, False), True
    return DeliveryResult(message.outbox_id, True, created.sid, None, False), False


def _twilio_error(client: Client, exc: TwilioRestException | TwilioServiceException) -> str:
    """``Twilio error 21211 (HTTP 400): The 'To' number ... is not valid.`` on one line."""
    if isinstance(exc, TwilioServiceException):
        text = exc.detail or exc.title
    else:
        text = str(exc.msg).removeprefix("Unable to create record").lstrip(": ")
    text = text or _problem_detail(client) or "request refused"
    code = exc.code if exc.code not in (None, exc.status) else None
    label = f"Twilio error {code} (HTTP {exc.status})" if code else f"Twilio HTTP {exc.status}"
    if int(exc.status) == 401:
        label = f"Twilio login failed: {label}"
    return one_line(f"{label}: {text}")


def _problem_detail(client: Client) -> str:
    """What a non-Twilio error body says (a proxy's or the contract mock's problem JSON)."""
    http = client.http_client
    last = http.last if isinstance(http, _RecordingHttpClient) else None
    if last is None:
        return ""
    try:
        body = json.loads(last.text)
    except ValueError:
        return last.text[:200]
    if not isinstance(body, dict):
        return ""
    checks = [v.get("message", "") for v in body.get("validation", []) if isinstance(v, dict)]
    return "; ".join(filter(None, [body.get("title", ""), *checks])) or body.get("detail", "")
