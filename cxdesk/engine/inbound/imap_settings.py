"""The ``[imap]`` settings: which mailbox ``cxdesk mail fetch`` and ``cxdesk worker`` read.

``ImapSettings.load`` reads the config file's ``[imap]`` table, overridden by ``CXDESK_IMAP_*``
variables; the password only ever comes from ``CXDESK_IMAP_PASSWORD`` (the file may not hold
it). A bad value is one ``DeskError`` line; ``check`` says what is missing for fetching.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cxdesk.config import Settings
from cxdesk.engine.channels import (
    check_keys,
    port_setting,
    read_setting,
    seconds_setting,
    text_setting,
)
from cxdesk.errors import DeskError
from cxdesk.i18n import _

TLS_MODES = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 143, "starttls": 143, "tls": 993}

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
                raise DeskError(
                    _("Setting imap.{key} must be one line of printable text").format(key=key)
                )
            return value

        tls = text("tls").lower() or "tls"
        if tls not in TLS_MODES:
            raise DeskError(
                _("Setting imap.tls must be one of none, starttls, tls, not {tls!r}").format(
                    tls=tls
                )
            )

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
            raise DeskError(_("Setting imap must be a table ([imap] in the config file)"))
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
                _(
                    "IMAP is not configured: set CXDESK_IMAP_HOST (or host in the config file's "
                    "[imap] table), CXDESK_IMAP_USERNAME and CXDESK_IMAP_PASSWORD"
                )
            )
        if not self.username:
            raise DeskError(_("No IMAP username: set CXDESK_IMAP_USERNAME (or [imap] username)"))
        if not self.password:
            raise DeskError(_("No IMAP password: set CXDESK_IMAP_PASSWORD"))
