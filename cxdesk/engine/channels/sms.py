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
  is not tried now.

Twilio has no idempotency key. A message whose earlier attempt has an unknown outcome
(``SmsOut.unknown_since``: a deliverer died between marking it "sending" and recording its
result, or the attempt failed transiently, e.g. timed out) is first looked up (``find_sent``:
Messages listed by To, From and date sent since that attempt, newest first, matched on the
body and created no earlier than the attempt) and reported sent with the SID found
(``found``) instead of being sent again. If the lookup itself fails, the message is not sent
now (transient). Twilio filters on the date *sent*: a message it still held queued when the
lookup ran (no date sent yet) is not found and is sent again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from cxdesk.engine.channels import (
    DeliveryResult,
    ResultCallback,
    SendGate,
    check_keys,
    one_line,
    read_setting,
    seconds_setting,
    text_setting,
)
from cxdesk.errors import DeskError
from cxdesk.i18n import _

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
            raise DeskError(
                _("Setting twilio.api_url must be an http(s) URL, not {api_url!r}").format(
                    api_url=api_url
                )
            )
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
            raise DeskError(
                _("SMS is not configured: set {names}").format(names=", ".join(missing))
            )


@dataclass(frozen=True)
class SmsOut:
    """One text message to send, as the outbox row says it."""

    outbox_id: int
    to: str
    body: str
    unknown_since: datetime | None = None
    """When an earlier attempt began whose outcome is unknown: look it up before sending."""


LOOKUP_SLACK = timedelta(minutes=2)
"""How far before an unknown attempt a message found at Twilio may have been created (clocks
differ): an identical, older message to the same number is not taken for it."""
LOOKUP_LIMIT = 200
"""At most this many of the number's messages since the attempt are read."""


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
    before_send: SendGate | None = None,
) -> list[DeliveryResult]:
    """Send each message with one client (one pooled HTTP session); one result each, in order,
    up to the first one ``before_send`` refuses (that one and the rest get none)."""
    client = twilio_client(settings)
    sender = (
        {"from_": settings.from_number}
        if settings.from_number
        else {"messaging_service_sid": settings.messaging_service_sid}
    )
    results: list[DeliveryResult] = []
    stopped: str | None = None  # why the rest of the batch is not tried now
    for message in messages:
        if stopped is not None:
            result = DeliveryResult(message.outbox_id, False, None, stopped, False)
        elif not message.to.strip() or len(message.to.splitlines()) > 1:
            error = f"refused: bad phone number {message.to!r}"
            result = DeliveryResult(message.outbox_id, False, None, error, True)
        elif not message.body.strip():  # Twilio refuses it (error 21602); the contract allows it
            result = DeliveryResult(message.outbox_id, False, None, "refused: empty body", True)
        elif message.unknown_since is not None and (found := _look_up(client, settings, message)):
            result, stop = found
            if stop:
                stopped = f"not tried after: {result.error}"
        elif before_send is not None and not before_send(message.outbox_id):
            break
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
        error = _unreachable(settings, exc)
        return DeliveryResult(message.outbox_id, False, None, error, False), True
    return DeliveryResult(message.outbox_id, True, created.sid, None, False), False


def find_sent(client: Client, settings: SmsSettings, message: SmsOut) -> str | None:
    """The SID of a message Twilio accepted for ``message`` since its unknown attempt, or
    None; Twilio's errors and connection failures are raised."""
    assert message.unknown_since is not None
    since = message.unknown_since - LOOKUP_SLACK
    sender = {"from_": settings.from_number} if settings.from_number else {}
    for sent in client.messages.stream(
        to=message.to, date_sent_after=since, limit=LOOKUP_LIMIT, page_size=50, **sender
    ):
        created = sent.date_created
        if sent.body == message.body and (created is None or created >= since):
            return str(sent.sid)
    return None


def _look_up(
    client: Client, settings: SmsSettings, message: SmsOut
) -> tuple[DeliveryResult, bool] | None:
    """Sent already (found), or the lookup failed (not sent now; the bool as in ``_send_one``);
    None: not found, send it."""
    try:
        sid = find_sent(client, settings, message)
    except (TwilioRestException, TwilioServiceException) as exc:
        error = f"looking up an earlier attempt: {_twilio_error(client, exc)}"
        return DeliveryResult(message.outbox_id, False, None, error, False), int(exc.status) == 429
    except requests.RequestException as exc:
        error = f"looking up an earlier attempt: {_unreachable(settings, exc)}"
        return DeliveryResult(message.outbox_id, False, None, error, False), True
    except TwilioException as exc:  # a list page refused: twilio-python parses no error there
        http = client.http_client
        last = http.last if isinstance(http, _RecordingHttpClient) else None
        if last is None:
            error = f"looking up an earlier attempt: {_unreachable(settings, exc)}"
            return DeliveryResult(message.outbox_id, False, None, error, False), True
        json_body = last.text.lstrip().startswith("{")
        detail = (_problem_detail(client) or _twilio_message(last.text)) if json_body else ""
        error = one_line(f"looking up an earlier attempt: Twilio HTTP {last.status_code} "
                         f"listing messages{': ' + detail if detail else ''}")  # fmt: skip
        return DeliveryResult(message.outbox_id, False, None, error, False), last.status_code == 429
    if sid is None:
        return None
    return DeliveryResult(message.outbox_id, True, sid, None, False, found=True), False


def _unreachable(settings: SmsSettings, exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        reason = f"no answer in {settings.timeout:g} s"
    else:  # requests nests the cause in a long repr; the errno text says it all
        errno = re.search(r"\[Errno -?\d+\] [^\"')]+", str(exc))
        reason = errno.group(0) if errno else one_line(exc)
    return f"Twilio API {settings.api_url} unreachable: {reason}"


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


def _twilio_message(text: str) -> str:
    """The ``message`` of Twilio's error JSON, or empty."""
    try:
        body = json.loads(text)
    except ValueError:
        return ""
    return str(body.get("message") or "") if isinstance(body, dict) else ""


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
