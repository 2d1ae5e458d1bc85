"""Desk-hours arithmetic: SLA targets count only the hours a calendar is open.

A calendar (``store.models.SlaCalendar``) is a time zone, weekly hours per weekday (``mon``...
``sun``: ``[["08:00", "12:00"], ["13:00", "18:00"]]``, ``"24:00"`` ends a day) and dated
exceptions (``{"date": "2026-12-08", "name": "...", "hours": [...]}``: that day's own hours,
none for a holiday). Hours are wall-clock times in the calendar's zone, turned into UTC day
by day, so a day that springs forward is an hour shorter and one that falls back an hour
longer. No calendar (None): the clock runs around the clock.

Pure functions, no database: ``add_desk_minutes`` (a due time), ``desk_minutes_between``
(how much desk time passed: a pause), ``next_open`` (open now, or when), and
``calendar_problems`` (what is wrong with a calendar, one line per problem). A calendar with
no weekly hours is refused (``calendar_problems``), so adding always ends; the search is
capped anyway at ``MAX_SEARCH_DAYS`` (``NoDeskHours`` beyond).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cxdesk.errors import DeskError
from cxdesk.store import directory
from cxdesk.store.models import as_utc

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SEARCH_DAYS = 3 * 366
"""How far ahead a due time is looked for; a valid calendar opens at least once a week."""
MAX_EXCEPTIONS = 1000
MAX_STRETCHES = 24
"""Opening stretches in one day (``[["09:00", "12:00"], ["13:00", "17:00"]]`` is two)."""
_HOUR = re.compile(r"^(\d{2}):(\d{2})$")
Span = tuple[int, int]
"""Opening hours of one day as (start, end) minutes after local midnight; end may be 1440."""


class NoDeskHours(DeskError):
    """The calendar has no open hour within ``MAX_SEARCH_DAYS``."""


class CalendarLike(Protocol):
    @property
    def time_zone(self) -> str: ...
    @property
    def weekly(self) -> dict[str, Any]: ...
    @property
    def exceptions(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class DeskHours:
    """A checked calendar, ready for arithmetic."""

    zone: ZoneInfo
    weekly: tuple[tuple[Span, ...], ...]
    """Monday first."""
    exceptions: Mapping[date, tuple[Span, ...]]

    @classmethod
    def of(cls, calendar: CalendarLike) -> DeskHours:
        """The calendar's hours; ``DeskError`` naming its first problem if it has one."""
        problems = calendar_problems(calendar.time_zone, calendar.weekly, calendar.exceptions)
        if problems:
            raise DeskError(problems[0])
        weekly = tuple(_spans(calendar.weekly.get(day) or []) for day in WEEKDAYS)
        exceptions = {
            date.fromisoformat(str(item["date"])): _spans(item.get("hours") or [])
            for item in calendar.exceptions
        }
        return cls(ZoneInfo(calendar.time_zone), weekly, exceptions)

    def on(self, day: date) -> tuple[Span, ...]:
        """The opening hours of a local day: its exception's if it has one, else its weekday's."""
        found = self.exceptions.get(day)
        return found if found is not None else self.weekly[day.weekday()]


Calendar = DeskHours | CalendarLike | None


def _hours(calendar: Calendar) -> DeskHours | None:
    if calendar is None or isinstance(calendar, DeskHours):
        return calendar
    return DeskHours.of(calendar)


def _minute(text: str) -> int:
    match = _HOUR.match(text)
    assert match is not None
    return int(match[1]) * 60 + int(match[2])


def _spans(hours: Sequence[Sequence[str]]) -> tuple[Span, ...]:
    return tuple(sorted((_minute(start), _minute(end)) for start, end in hours))


@lru_cache(maxsize=4096)
def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """A local wall-clock minute of ``day`` as UTC (1440: the next day's midnight). A time in
    a spring-forward gap counts with the offset before the change (zoneinfo's fold 0).

    Remembered: a check-in's due times ask for the same few days' openings a dozen times."""
    if minute >= 1440:
        day, minute = day + timedelta(days=1), minute - 1440
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
    return local.astimezone(UTC)


def open_spans(
    hours: DeskHours, since: datetime, *, until: datetime | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """The calendar's open times in UTC from ``since`` on, in order and not overlapping (the
    first clipped to start at ``since``); up to ``until`` if given, else ``NoDeskHours`` after
    ``MAX_SEARCH_DAYS`` days."""
    since = as_utc(since)
    # The local day before: its late hours may reach past UTC midnight into ``since``.
    day = since.astimezone(hours.zone).date() - timedelta(days=1)
    last = since
    for _day in range(MAX_SEARCH_DAYS + 2):
        for start_minute, end_minute in hours.on(day):
            start = max(_instant(day, start_minute, hours.zone), last)
            end = _instant(day, end_minute, hours.zone)
            if until is not None and start >= until:
                return
            if end > start:
                yield start, end
                last = end
        day += timedelta(days=1)
        if until is not None and _instant(day, 0, hours.zone) >= until:
            return
    raise NoDeskHours(
        f"The calendar has no desk hours within {MAX_SEARCH_DAYS} days of {since:%Y-%m-%d}"
    )


def add_desk_minutes(calendar: Calendar, start: datetime, minutes: float) -> datetime:
    """The moment ``minutes`` desk minutes after ``start`` (aware UTC). Outside desk hours the
    count starts when the desk next opens; 0 minutes outside hours is that opening."""
    start = as_utc(start)
    hours = _hours(calendar)
    if hours is None:
        return start + timedelta(minutes=minutes)
    left = timedelta(minutes=max(0.0, minutes))
    for span_start, span_end in open_spans(hours, start):
        if span_end - span_start >= left:
            return span_start + left
        left -= span_end - span_start
    raise AssertionError("open_spans ends only by raising")  # pragma: no cover


def desk_minutes_between(calendar: Calendar, start: datetime, end: datetime) -> float:
    """How many desk minutes passed from ``start`` to ``end`` (0 if ``end`` is not later)."""
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        return 0.0
    hours = _hours(calendar)
    if hours is None:
        return (end - start).total_seconds() / 60
    total = timedelta()
    for span_start, span_end in open_spans(hours, start, until=end):
        total += min(span_end, end) - span_start
    return total.total_seconds() / 60


def next_open(calendar: Calendar, moment: datetime) -> tuple[datetime, datetime] | None:
    """(when the desk is next open, from ``moment`` itself if it is open then; when that
    stretch closes), in UTC; None if it does not open within ``MAX_SEARCH_DAYS``."""
    hours = _hours(calendar)
    if hours is None:
        return as_utc(moment), as_utc(moment) + timedelta(days=MAX_SEARCH_DAYS)
    try:
        spans = open_spans(hours, moment)
        start, end = next(spans)
        for more_start, more_end in spans:  # back-to-back spans (past midnight) are one stretch
            if more_start != end:
                break
            end = more_end
        return start, end
    except NoDeskHours:
        return None


# -- checking a calendar ------------------------------------------------------------------------


def zone_problem(name: object) -> str | None:
    """Why ``name`` is not a time zone (an IANA name such as ``Europe/Paris``), or None: the
    desk's own check (``directory.zone_problem``), for a value read from a seed."""
    if not isinstance(name, str) or not name.strip():
        return "time_zone must be an IANA time zone name such as Europe/Paris"
    return directory.zone_problem(name)


def hours_problems(hours: object, where: str) -> list[str]:
    """What is wrong with one day's hours: a list of ``["HH:MM", "HH:MM"]`` pairs, each
    starting before it ends, not overlapping; one line per problem."""
    if not isinstance(hours, list):
        return [f'{where}: hours must be a list of ["HH:MM", "HH:MM"] pairs']
    if len(hours) > MAX_STRETCHES:
        return [f"{where}: at most {MAX_STRETCHES} stretches of hours a day ({len(hours)})"]
    problems: list[str] = []
    spans: list[Span] = []
    for pair in hours:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(value, str) for value in pair)
        ):
            problems.append(f'{where}: {pair!r} is not a ["HH:MM", "HH:MM"] pair')
            continue
        bad = [value for value in pair if not _valid_hour(value)]
        if bad:
            problems.append(f"{where}: {bad[0]!r} is not a time from 00:00 to 24:00")
            continue
        start, end = _minute(pair[0]), _minute(pair[1])
        if start >= end:
            problems.append(f"{where}: {pair[0]}-{pair[1]} ends before it starts")
            continue
        spans.append((start, end))
    spans.sort()
    for (_start, end), (start, _end) in zip(spans, spans[1:], strict=False):
        if start < end:
            problems.append(f"{where}: hours overlap at {start // 60:02d}:{start % 60:02d}")
    return problems


def _valid_hour(text: str) -> bool:
    match = _HOUR.match(text)
    if match is None:
        return False
    hour, minute = int(match[1]), int(match[2])
    return (hour < 24 and minute < 60) or (hour, minute) == (24, 0)


def calendar_problems(time_zone: object, weekly: object, exceptions: object) -> list[str]:
    """Everything wrong with a calendar, one line each; empty when it can be used."""
    problems: list[str] = []
    if (problem := zone_problem(time_zone)) is not None:
        problems.append(problem)
    if not isinstance(weekly, dict):
        problems.append('weekly must be a table of weekdays (mon = [["09:00", "17:00"]], ...)')
        weekly = {}
    for day, hours in weekly.items():
        if day not in WEEKDAYS:
            problems.append(f"weekly: unknown weekday {day!r} (one of {', '.join(WEEKDAYS)})")
        else:
            problems += hours_problems(hours, f"weekly.{day}")
    if not any(weekly.get(day) for day in WEEKDAYS):
        problems.append("the calendar has no weekly hours: it would never be open")
    if not isinstance(exceptions, list):
        return [*problems, "exceptions must be a list of {date, name, hours} tables"]
    if len(exceptions) > MAX_EXCEPTIONS:
        problems.append(f"at most {MAX_EXCEPTIONS} exceptions ({len(exceptions)})")
    seen: set[str] = set()
    for item in exceptions:
        if not isinstance(item, dict) or not isinstance(item.get("date"), str | date):
            problems.append("exceptions: each one needs a date (YYYY-MM-DD)")
            continue
        when = str(item["date"])
        try:
            date.fromisoformat(when)
        except ValueError:
            problems.append(f"exceptions: {when!r} is not a date (YYYY-MM-DD)")
            continue
        if when in seen:
            problems.append(f"exceptions: {when} is listed twice")
        seen.add(when)
        unknown = set(item) - {"date", "name", "hours"}
        if unknown:
            problems.append(f"exceptions {when}: unknown key {sorted(unknown)[0]!r}")
        name = item.get("name", "")
        if not isinstance(name, str) or len(name) > 100:
            problems.append(f"exceptions {when}: name must be text of at most 100 characters")
        problems += hours_problems(item.get("hours", []), f"exceptions {when}")
    return problems


def format_spans(spans: Sequence[Sequence[str]]) -> str:
    """``08:00-12:00, 13:00-18:00``; ``closed`` for none."""
    return ", ".join(f"{start}-{end}" for start, end in spans) or "closed"
