"""A recording Twilio: what reached "Twilio", with every request's contract checked by Prism.

Registered as a pytest plugin by ``tests/conftest.py``. Fixture ``twilio_recorder`` ->
``TwilioRecorder``, a local HTTP server to point the SMS channel at
(``twilio_settings(recorder.url)`` or ``CXDESK_TWILIO_API_URL``). Every request is first
forwarded, as it came (method, path, query, auth, form), to Prism serving Twilio's OpenAPI
contract (``twilio_mock``); a request the contract refuses gets Prism's refusal back, unchanged.
What is real and what is not:

- real: the request's contract (Prism), the HTTP exchange with twilio-python, and the record
  of what was accepted (``recorder.sent``, one ``SentSms`` per message created, in order);
- made up here, as Prism makes up its own: the answers. Prism answers every valid request
  with the spec's example (always the same ``SMaaaa...`` sid, an empty-looking list), so it
  cannot say whether a message was sent. The recorder answers a create with Prism's example
  message, its ``sid``, ``to``, ``from``, ``body``, dates and status replaced by the
  message's own (a new ``SM`` + 32 hex sid each); and a list of Messages (``To``, ``From``,
  ``DateSent>``) with Prism's example page, ``messages`` replaced by the recorded ones that
  match, built the same way, and no next page. Replaced values keep the formats the schema
  gives (sid pattern, RFC 2822 dates), so answers stay what the contract allows.

``recorder.lists`` counts the list calls (a lookup before a re-send).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.peers import http_server


@dataclass(frozen=True)
class SentSms:
    sid: str
    to: str
    from_: str
    body: str
    date_sent: datetime


@dataclass
class TwilioRecorder:
    """See the module docstring."""

    url: str
    prism: str
    sent: list[SentSms] = field(default_factory=list)
    lists: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _sids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def bodies(self) -> list[str]:
        with self.lock:
            return [sms.body for sms in self.sent]

    def create(self, form: dict[str, str], template: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            sms = SentSms(
                sid=f"SM{next(self._sids):032x}",
                to=form.get("To", ""),
                from_=form.get("From", ""),
                body=form.get("Body", ""),
                date_sent=datetime.now(UTC),
            )
            self.sent.append(sms)
        return _as_message(template, sms)

    def matching(self, query: dict[str, str], template: dict[str, Any]) -> list[dict[str, Any]]:
        after = query.get("DateSent>")
        since = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else None
        with self.lock:
            self.lists += 1
            found = [
                sms
                for sms in self.sent
                if sms.to == query.get("To", sms.to)
                and sms.from_ == query.get("From", sms.from_)
                and (since is None or sms.date_sent >= since)
            ]
        return [_as_message(template, sms) for sms in reversed(found)]  # newest first


def _as_message(template: dict[str, Any], sms: SentSms) -> dict[str, Any]:
    stamp = format_datetime(sms.date_sent, usegmt=True)
    return {
        **template,
        "sid": sms.sid,
        "to": sms.to,
        "from": sms.from_,
        "body": sms.body,
        "status": "sent",
        "date_created": stamp,
        "date_updated": stamp,
        "date_sent": stamp,
        "uri": f"{template.get('uri', '').rsplit('/', 1)[0]}/{sms.sid}.json",
    }


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:
            # The sender died mid-request (a test's SIGKILL): Twilio never had a whole
            # message, so nothing is recorded (Prism would have checked an empty form).
            self.close_connection = True
            return
        self._answer(body)

    def _answer(self, body: bytes) -> None:
        recorder: TwilioRecorder = self.server.recorder  # type: ignore[attr-defined]
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() in ("authorization", "content-type", "accept", "user-agent")
        }
        checked = requests.request(
            self.command, recorder.prism + self.path, data=body, headers=headers, timeout=30
        )
        status, payload = checked.status_code, checked.content
        is_messages = urlsplit(self.path).path.endswith("/Messages.json")
        if status < 400 and is_messages:
            example = checked.json()
            if self.command == "POST":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                payload = json.dumps(recorder.create(form, example)).encode()
            else:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                [template] = example["messages"][:1] or [_EMPTY_TEMPLATE]
                page = {**example, "next_page_uri": None, "previous_page_uri": None}
                page["messages"] = recorder.matching(query, template)
                payload = json.dumps(page).encode()
        self.send_response(status)
        self.send_header("Content-Type", checked.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on the recorder."""


_EMPTY_TEMPLATE: dict[str, Any] = {"uri": "/2010-04-01/Accounts/AC/Messages/SM.json"}


@pytest.fixture
def twilio_recorder(twilio_mock: str) -> Iterator[TwilioRecorder]:
    """A recording Twilio on 127.0.0.1 for this test, checking requests with Prism."""
    with http_server(_Handler) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        recorder = TwilioRecorder(url=url, prism=twilio_mock)
        server.recorder = recorder  # type: ignore[attr-defined]
        yield recorder
