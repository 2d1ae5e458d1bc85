"""``POST /twilio/sms``: Twilio's "A message comes in" webhook on the survey server.

Twilio posts each text message a customer sends the desk's number as a form, signed in
``X-Twilio-Signature`` (HMAC-SHA1 of the URL it requested and the form's fields, keyed with the
account's auth token, ``TWILIO_AUTH_TOKEN``). The signature is checked with twilio's
``RequestValidator`` against the **public** URL of the webhook, ``<public_url>/twilio/sms``
(``ServerSettings.public_url``: the desk's ``survey_url``, ``CXDESK_SURVEY_URL``), never one
built from the request's Host header, which the client chooses. Behind a proxy that serves
the desk at ``https://desk.example.org``, Twilio's console holds
``https://desk.example.org/twilio/sms``, and so must ``CXDESK_SURVEY_URL`` (its base).

- No auth token configured or no signature: 403 at once. Then the form is read (another
  content type: 415; a bad length, not UTF-8 or too many fields: 400; the body is capped by
  the server, ``MAX_BODY_BYTES``: 413) and its signature checked: 403 if it does not match.
  Nothing is read from or written to the desk before the signature matched.
- A signed form without a ``MessageSid`` or ``From``, or whose ``NumMedia`` is not 0-10: 400.
- A signed message is handed to ``store.sms_inbound.receive_sms`` in one ``unit_of_work``
  (once per ``MessageSid``; STOP and START; the customer's ticket) and answered with empty
  TwiML (``<Response/>``): the desk never answers a text automatically here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Engine
from twilio.request_validator import RequestValidator

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.store.sms_inbound import InboundSms, receive_sms
from cxdesk.web.settings import MAX_BODY_BYTES, ServerSettings

TWILIO_SMS_PATH = "/twilio/sms"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWIML_TYPE = "text/xml; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 100
"""Form fields at most: Twilio sends about 20, plus two per MMS file (at most 10)."""
MAX_MEDIA = 10
MESSAGE_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")

log = logging.getLogger("cxdesk.web")


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: str
    content_type: str = TEXT_TYPE


class _Form(dict[str, list[str]]):
    """The form's fields with every value, as ``RequestValidator`` reads a MultiDict."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def refused(status: int, why: str) -> WebhookAnswer:
    return WebhookAnswer(status, why + "\n")


class TwilioSmsWebhook:
    """The webhook for one desk; ``handle`` answers one request to ``TWILIO_SMS_PATH``."""

    def __init__(self, engine: Engine, settings: ServerSettings):
        self.engine = engine
        self.url = settings.public_url.rstrip("/") + TWILIO_SMS_PATH
        self._token = settings.twilio_auth_token

    def handle(self, environ: dict[str, Any]) -> WebhookAnswer:
        if environ.get("REQUEST_METHOD") != "POST":
            return refused(405, "Twilio posts messages here.")
        if not self._token:
            return refused(403, "Text messages are not received: no Twilio auth token is set.")
        signature = str(environ.get("HTTP_X_TWILIO_SIGNATURE") or "")
        if not signature:
            return refused(403, "Not signed by Twilio.")
        raw, form = _read_form(environ)
        if isinstance(form, WebhookAnswer):
            return form
        query = str(environ.get("QUERY_STRING") or "")
        url = self.url + (f"?{query}" if query else "")
        if not RequestValidator(self._token).validate(url, form, signature):
            return refused(403, "Not signed by Twilio for this desk's address.")
        sms = _message(form, raw)
        if isinstance(sms, WebhookAnswer):
            return sms
        with unit_of_work(self.engine) as session:
            outcome = receive_sms(session, sms)
        if outcome.outcome == "refused":
            log.warning("twilio sms %s refused: %s", sms.sid, outcome.detail)
        else:
            log.info("twilio sms %s: %s %s", sms.sid, outcome.outcome, outcome.ticket_key or "")
        return WebhookAnswer(200, EMPTY_TWIML, TWIML_TYPE)


def _read_form(environ: dict[str, Any]) -> tuple[bytes, _Form | WebhookAnswer]:
    content_type = str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        return b"", refused(415, f"Expected {FORM_TYPE}.")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b"", refused(400, "Bad Content-Length.")
    if length > MAX_BODY_BYTES:
        return b"", refused(413, "Too long.")
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        fields = parse_qs(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeError, ValueError):
        return raw, refused(400, "Not a valid form.")
    return raw, _Form(fields)


def _message(form: _Form, raw: bytes) -> InboundSms | WebhookAnswer:
    """The message in a signed form, or why it is not one."""

    def one(name: str) -> str:
        values = form.get(name) or [""]
        return values[0]

    sid, sender = one("MessageSid"), one("From")
    if not MESSAGE_SID.fullmatch(sid) or not sender.strip():
        return refused(400, "A message needs a MessageSid and a From.")
    count = one("NumMedia") or "0"
    if not (count.isascii() and count.isdigit() and int(count) <= MAX_MEDIA):
        return refused(400, f"NumMedia must be 0 to {MAX_MEDIA}.")
    media = [(one(f"MediaContentType{n}"), one(f"MediaUrl{n}")) for n in range(int(count))]
    return InboundSms(sid=sid, sender=sender, body=one("Body"), media=media, raw=raw)
