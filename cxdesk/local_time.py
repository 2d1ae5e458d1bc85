"""Dates and times as people read them: in the desk's time zone (the ``time_zone`` setting),
written the way the current language writes them (Babel's CLDR data).

The zone in use is the process's, like its language: ``use_zone`` sets it once the desk is
read (the TUI at login, the CLI with its acting user). Babel is imported inside the functions
that format, never at start-up. JSON and exports keep ISO 8601 with the offset
(``iso_time``); only people's output goes through ``shown_time``.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cxdesk.i18n import PSEUDO, current_language

_zone: tzinfo = UTC

_DATE_SKELETON = "yMMMd"
"""Year, short month and day ("Dec 7, 2026", "7 déc. 2026", "2026年12月7日"), then the short
time ("1:05 PM", "13:05") joined as the language joins them."""


def use_zone(zone: tzinfo | str | None) -> tzinfo:
    """Show times in ``zone`` (a tzinfo or an IANA name) from now on; None or an unknown name:
    UTC. Returns the zone in use."""
    global _zone
    if isinstance(zone, str):
        try:
            zone = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            zone = None
    _zone = zone or UTC
    return _zone


def shown_zone() -> tzinfo:
    return _zone


def moment_of(value: object) -> datetime | None:
    """A stored time (aware datetime, naive UTC datetime or ISO text) as an aware datetime."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def babel_locale(language: str | None = None) -> str:
    """The Babel locale of a desk language (the tests' pseudo-language writes as English,
    but ``shown_time`` writes its times in digits only)."""
    code = language or current_language()
    return "en" if code == PSEUDO else code


def shown_time(value: object, *, offset: bool = False, zone: tzinfo | None = None) -> str:
    """``value`` in the desk's zone, to the minute, as the current language writes it;
    ``offset`` adds the zone's UTC offset ("+09:00"), as the CLI's human output says it.
    Empty for no time."""
    moment = moment_of(value)
    if moment is None:
        return ""
    from babel.dates import format_skeleton, format_time, get_datetime_format

    local = moment.astimezone(zone or _zone)
    if current_language() == PSEUDO:  # digits only: a month's name is no catalog text
        text = local.strftime("%Y-%m-%d %H:%M")
    else:
        locale = babel_locale()
        text = (
            str(get_datetime_format("medium", locale=locale))
            .replace("{1}", format_skeleton(_DATE_SKELETON, local, locale=locale))
            .replace("{0}", format_time(local, "short", locale=locale))
        )
    return f"{text} {local.strftime('%z')[:3]}:{local.strftime('%z')[3:]}" if offset else text


def iso_time(value: object, *, zone: tzinfo | None = None) -> str | None:
    """``value`` as ISO 8601 with its offset, in the desk's zone (for JSON)."""
    moment = moment_of(value)
    return None if moment is None else moment.astimezone(zone or _zone).isoformat()
