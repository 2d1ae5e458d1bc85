"""The survey server's settings: the config file's ``[survey_server]`` table and its variables.

Every limit has a default fit for a server on the internet; the environment variable wins over
the file. A bad value is one ``Error:`` line when ``cxdesk survey serve`` starts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from cxdesk.config import DEFAULT_SURVEY_URL, Settings
from cxdesk.engine.channels import check_keys, read_setting, text_setting
from cxdesk.errors import DeskError
from cxdesk.i18n import _

TABLE = "survey_server"
_ENV = {
    "threads": "CXDESK_SURVEY_THREADS",
    "connection_limit": "CXDESK_SURVEY_CONNECTION_LIMIT",
    "read_timeout": "CXDESK_SURVEY_READ_TIMEOUT",
    "answers_per_address": "CXDESK_SURVEY_ANSWERS_PER_ADDRESS",
    "answers_per_email": "CXDESK_SURVEY_ANSWERS_PER_EMAIL",
    "answer_window": "CXDESK_SURVEY_ANSWER_WINDOW",
    "trusted_proxy": "CXDESK_SURVEY_TRUSTED_PROXY",
}
MAX_HEADER_BYTES = 16 * 1024
"""The request line and headers; a survey link is a few hundred bytes."""
MAX_BODY_BYTES = 64 * 1024
"""An answer's form; its longest field (a comment) is far shorter."""


@dataclass(frozen=True)
class ServerSettings:
    """How much the survey server takes on, and from whom."""

    threads: int = 8
    """Requests handled at once (the bounded pool); more wait, already read, in a queue."""
    connection_limit: int = 1000
    """Open connections at most; past it the server accepts no more until some close."""
    read_timeout: int = 10
    """Seconds a request may take to arrive whole, counted from its first byte, and seconds an
    idle connection stays open. A connection that sends slower is closed."""
    answers_per_address: int = 30
    """Answers (form submits) from one client address per ``answer_window``; an IPv6 client
    counts by its /64 network."""
    answers_per_email: int = 5
    """Answers for one email address (the NPS form's email, a CSAT ticket's customer) per
    ``answer_window``."""
    answer_window: int = 3600
    """Seconds over which the answer limits count: a burst of the limit, then one answer every
    ``answer_window / limit`` seconds."""
    trusted_proxy: str = ""
    """The address of a reverse proxy in front of the server: only requests from it have their
    client address taken from ``X-Forwarded-For`` (its last entry). Empty: the header is
    ignored and the connection's address counts."""
    public_url: str = DEFAULT_SURVEY_URL
    """The address the internet reaches this server at, without a trailing slash: the desk's
    ``survey_url`` (``CXDESK_SURVEY_URL``), where CSAT links point. Twilio signs its webhook
    requests for ``<public_url>/twilio/sms``, and that is the URL the server checks them
    against (never one made from the Host header a client sends)."""
    twilio_auth_token: str = field(default="", repr=False)
    """``TWILIO_AUTH_TOKEN``: the key Twilio signs webhook requests with. Empty: every text
    message posted to ``/twilio/sms`` is refused (403)."""

    @classmethod
    def load(cls, file_values: Mapping[str, object]) -> ServerSettings:
        """The config file's ``[survey_server]`` table, overridden by the environment."""
        check_keys(file_values, table=TABLE, known=set(_ENV), secrets={})

        def count(key: str, default: int, *, low: int = 1, high: int = 1_000_000) -> int:
            return _count(read_setting(file_values, key, _ENV[key]), key, default, low, high)

        proxy = text_setting(
            read_setting(file_values, "trusted_proxy", _ENV["trusted_proxy"]),
            name=f"{TABLE}.trusted_proxy",
        )
        if proxy:
            try:
                proxy = str(ipaddress.ip_address(proxy))
            except ValueError:
                raise DeskError(
                    f"Setting {TABLE}.trusted_proxy must be an IP address, not {proxy!r}"
                ) from None
        return cls(
            threads=count("threads", cls.threads, high=256),
            connection_limit=count("connection_limit", cls.connection_limit, high=100_000),
            read_timeout=count("read_timeout", cls.read_timeout, high=3600),
            answers_per_address=count("answers_per_address", cls.answers_per_address),
            answers_per_email=count("answers_per_email", cls.answers_per_email),
            answer_window=count("answer_window", cls.answer_window, high=31 * 24 * 3600),
            trusted_proxy=proxy,
        )

    @classmethod
    def from_desk(cls, settings: Settings) -> ServerSettings:
        table = settings.extra.get(TABLE, {})
        if not isinstance(table, dict):
            raise DeskError(
                _("Config setting {table} must be a table ([{table}])").format(table=TABLE)
            )
        from cxdesk.engine.channels.sms import SmsSettings  # twilio's client: only here

        twilio = settings.extra.get("twilio", {})
        if not isinstance(twilio, dict):
            raise DeskError("Config setting twilio must be a table ([twilio])")
        return replace(
            cls.load(table),
            public_url=settings.resolved_survey_url,
            twilio_auth_token=SmsSettings.load(twilio).auth_token,
        )

    @property
    def twilio_sms_line(self) -> str:
        """Where Twilio posts text messages, in one line for ``cxdesk survey serve``."""
        url = f"{self.public_url}/twilio/sms"
        if not self.twilio_auth_token:
            return f"Text messages: off (set TWILIO_AUTH_TOKEN; Twilio then posts to {url})"
        return f"Text messages: Twilio posts to {url} (signed with TWILIO_AUTH_TOKEN)"

    def limits_line(self) -> str:
        """What the server allows, in one line for ``cxdesk survey serve``."""
        proxy = f"client address from {self.trusted_proxy}'s X-Forwarded-For"
        return (
            f"{self.threads} threads, {self.connection_limit} connections, "
            f"{self.read_timeout} s read timeout; per {self.answer_window} s at most "
            f"{self.answers_per_address} answers per address and {self.answers_per_email} per "
            f"email; {proxy if self.trusted_proxy else 'no trusted proxy'}"
        )


def _count(value: object | None, key: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        value = "not a number"
    try:
        number = int(str(value).strip())
    except ValueError:
        raise DeskError(
            _("Setting {name} must be a whole number, not {value!r}").format(
                name=f"{TABLE}.{key}", value=value
            )
        ) from None
    if not low <= number <= high:
        raise DeskError(
            _("Setting {name} must be between {low} and {high}, not {value!r}").format(
                name=f"{TABLE}.{key}", low=low, high=high, value=value
            )
        )
    return number
