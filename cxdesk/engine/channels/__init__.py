"""Delivery channels: send one batch of outbox messages over SMTP (``email``) or Twilio (``sms``).

A channel knows nothing of the database or the outbox rows: the worker turns claimed rows into
``EmailOut``/``SmsOut`` values, calls ``send_email_batch``/``send_sms_batch``, hears of each
``DeliveryResult`` the moment it arrives (``on_result``), and is asked just before each message
goes on the wire whether it may (``before_send``: the worker commits the results so far and
marks that message as being sent, so at most one message is ever sent and not recorded). A
channel never raises for a failed delivery; it reports it, saying whether a retry could help
(``permanent``).

This module also holds what both channels share: the result type and reading a setting from
the environment, then the config file's table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cxdesk.errors import DeskError
from cxdesk.i18n import _, ngettext


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one outbox message."""

    outbox_id: int
    ok: bool
    provider_id: str | None
    """The email's Message-ID or the Twilio message SID (``SM...``) when ``ok``."""
    error: str | None
    """One line saying what went wrong, when not ``ok``."""
    permanent: bool
    """True when retrying cannot help (SMTP 5xx, Twilio 4xx other than 429, bad address)."""
    found: bool = False
    """``ok`` without sending: an earlier attempt whose outcome was unknown had sent it (an
    SMS found at Twilio), so it was not sent again."""


ResultCallback = Callable[[DeliveryResult], None]
"""Called with each result as soon as it is known, so the caller can record it at once."""

SendGate = Callable[[int], bool]
"""Called with a message's outbox id just before it goes on the wire (after the results of
every earlier message were given to ``on_result``). False: send neither it nor any later
message of the batch; they get no result, for the caller to give back."""


def one_line(text: object) -> str:
    """``str(text)`` with every run of whitespace (line breaks included) made one space."""
    return " ".join(str(text).split())


def read_setting(file_values: Mapping[str, object], key: str, variable: str) -> object | None:
    """The environment variable if set and not empty, else ``file_values[key]``, else None."""
    if os.environ.get(variable):
        return os.environ[variable]
    return file_values.get(key)


def check_keys(
    file_values: Mapping[str, object], *, table: str, known: set[str], secrets: Mapping[str, str]
) -> None:
    """Refuse secrets and unknown keys in a config file table, with one line naming them."""
    for key, variable in secrets.items():
        if key in file_values:
            raise DeskError(
                _("[{table}] {key} must not be in the config file: set {variable}").format(
                    table=table, key=key, variable=variable
                )
            )
    unknown = sorted(set(file_values) - known)
    if unknown:
        raise DeskError(
            ngettext(
                "Unknown setting in [{table}]: {names} (known: {known})",
                "Unknown settings in [{table}]: {names} (known: {known})",
                len(unknown),
            ).format(table=table, names=", ".join(unknown), known=", ".join(sorted(known)))
        )


def text_setting(value: object | None, *, name: str, default: str = "") -> str:
    """A string setting; anything else in the file is a one-line error."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise DeskError(
            _("Setting {name} must be a string, not {value!r}").format(name=name, value=value)
        )
    return value.strip()


def seconds_setting(value: object | None, *, name: str, default: float) -> float:
    """A positive number of seconds, from a number or a numeric string."""
    if value is None or value == "":
        return default
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DeskError(
            _("Setting {name} must be a number of seconds, not {value!r}").format(
                name=name, value=value
            )
        ) from None
    if not seconds > 0:
        raise DeskError(
            _("Setting {name} must be more than 0 seconds, not {value!r}").format(
                name=name, value=value
            )
        )
    return seconds


def port_setting(value: object | None, *, name: str, default: int) -> int:
    """A TCP port number, from a number or a numeric string; ``default`` when unset."""
    if value is None or value == "":
        return default
    try:
        port = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise DeskError(
            _("Setting {name} must be a port number, not {value!r}").format(name=name, value=value)
        ) from None
    if isinstance(value, bool) or not 0 < port < 65536:
        raise DeskError(
            _("Setting {name} must be between 1 and 65535, not {value!r}").format(
                name=name, value=value
            )
        )
    return port


__all__ = ["DeliveryResult", "ResultCallback", "SendGate", "one_line"]
