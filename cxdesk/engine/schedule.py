"""Schedules of time-based workflows: cron's five fields or a friendly form, in a time zone.

``parse_schedule`` reads either

- cron's five fields ``minute hour day-of-month month day-of-week`` (``*``, ``*/15``,
  ``1-5``, ``9-17/2``, lists ``0,30``; months ``jan``-``dec`` and days ``sun``-``sat`` by
  name; day of week 0 or 7 is Sunday; when both day fields are restricted, a day matching
  either runs, as in Vixie cron), or
- a friendly form that stands for one: ``daily 18:00``, ``weekdays 09:00``, ``weekends
  10:30``, ``mondays 08:15`` (any day name in the plural), ``hourly``, ``every 15 minutes``
  (minutes 0, 15, 30, 45 of each hour, as cron's ``*/15``), ``every 2 hours`` (on the hour).

The times are wall-clock times of the desk's zone. On the day clocks go forward a time that
does not exist (02:30 in New York in March) runs once, at the instant that wall time would
have been before the change (03:30 new time); on the day they go back, a time that exists
twice runs once, the first time. Occurrences are returned as aware UTC instants.

Written here rather than taken from a library: the whole of it is this file, and croniter,
the usual choice, announced its end of maintenance in 2024.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

SLACK = timedelta(hours=3)
"""More than a wall time can move against its neighbours on a day clocks change (a wall time
in the gap runs at its pre-change offset): past it, no earlier (later) wall time can win."""
SEARCH_DAYS = 366 * 5 + 2
"""How far a next or previous run is looked for: a schedule on 29 February still has one."""

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
FRIENDLY_DAYS = {"daily": "*", "weekdays": "1-5", "weekends": "0,6"} | {
    name + "s": str(number) for number, name in enumerate(
        ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"))
}  # fmt: skip
FIELDS = (  # name, lowest, highest, names
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
FORMS = "five cron fields (m h dom mon dow), daily HH:MM, weekdays HH:MM or every N minutes"


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: which minutes, hours, days and months it runs at."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 Sunday ... 6 Saturday (7 read as 0)."""
    any_day: bool
    any_weekday: bool

    def runs_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date, by_weekday = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday

    def instants_on(self, day: date, zone: ZoneInfo) -> list[datetime]:
        """The UTC instants this schedule runs at on ``day`` of ``zone``, sorted, each once
        (a wall time that does not exist or exists twice gives one instant: see above)."""
        if not self.runs_on(day):
            return []
        return sorted(
            {
                datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)
                for hour in self.hours
                for minute in self.minutes
            }
        )

    def _instants(
        self, day: date, zone: ZoneInfo, *, backwards: bool, bound: datetime
    ) -> Iterator[datetime]:
        """The UTC instants of ``day`` from its last wall time back (or its first on), but
        for the hours wholly past ``bound`` (a wall time, naive): those cannot win."""
        for hour in reversed(self.hours) if backwards else self.hours:
            wall = datetime.combine(day, time(hour))
            if wall > bound if backwards else wall + timedelta(hours=1) < bound:
                continue
            for minute in reversed(self.minutes) if backwards else self.minutes:
                yield datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)

    def latest(self, until: datetime, zone: ZoneInfo) -> datetime | None:
        """The last run at or before ``until``; None if none in ``SEARCH_DAYS``."""
        best: datetime | None = None
        bound = until.astimezone(zone).replace(tzinfo=None) + SLACK
        start = until.astimezone(zone).date() + timedelta(days=1)
        for day in (start - timedelta(days=n) for n in range(SEARCH_DAYS)):
            if best is not None and _edge(day, zone, end=True) < best - SLACK:
                break
            if not self.runs_on(day):
                continue
            for instant in self._instants(day, zone, backwards=True, bound=bound):
                if instant <= until and (best is None or instant > best):
                    best = instant
                elif best is not None and instant < best - SLACK:
                    break  # earlier wall times cannot come after it
        return best

    def next_after(self, after: datetime, zone: ZoneInfo) -> datetime | None:
        """The first run after ``after``; None if none in ``SEARCH_DAYS``."""
        best: datetime | None = None
        bound = after.astimezone(zone).replace(tzinfo=None) - SLACK
        start = after.astimezone(zone).date() - timedelta(days=1)
        for day in (start + timedelta(days=n) for n in range(SEARCH_DAYS)):
            if best is not None and _edge(day, zone, end=False) > best + SLACK:
                break
            if not self.runs_on(day):
                continue
            for instant in self._instants(day, zone, backwards=False, bound=bound):
                if instant > after and (best is None or instant < best):
                    best = instant
                elif best is not None and instant > best + SLACK:
                    break
        return best


def _edge(day: date, zone: ZoneInfo, *, end: bool) -> datetime:
    """The first (or last) minute of ``day`` in ``zone``, as UTC."""
    return datetime.combine(day, time(23, 59) if end else time(), tzinfo=zone).astimezone(UTC)


def _number(text: str, low: int, high: int, names: tuple[str, ...], field: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if names is MONTHS else 0)
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{field}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{field}: {value} is not from {low} to {high}")
    return value


def _field(text: str, low: int, high: int, names: tuple[str, ...], field: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        spread, _, step_text = part.partition("/")
        step = _number(step_text, 1, high - low + 1, (), field) if step_text else 1
        if spread == "*":
            first, last = low, high
        elif "-" in spread:
            left, _, right = spread.partition("-")
            first, last = (_number(left, low, high, names, field),
                           _number(right, low, high, names, field))  # fmt: skip
            if first > last:
                raise ValueError(f"{field}: the range {spread} runs backwards")
        else:
            first = _number(spread, low, high, names, field)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return values


def _friendly(text: str) -> str | None:
    """The cron fields a friendly form stands for; None when it is not one."""
    words = text.lower().split()
    if words == ["hourly"]:
        return "0 * * * *"
    if len(words) == 3 and words[0] == "every" and words[2] in ("minute", "minutes"):
        return f"*/{words[1]} * * * *"
    if len(words) == 3 and words[0] == "every" and words[2] in ("hour", "hours"):
        return f"0 */{words[1]} * * *"
    if len(words) == 2 and words[0] in FRIENDLY_DAYS:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", words[1])
        if match is None:
            raise ValueError(f"{words[0]} takes a time as HH:MM, not {words[1]!r}")
        return f"{int(match[2])} {int(match[1])} * * {FRIENDLY_DAYS[words[0]]}"
    return None


@lru_cache(maxsize=256)  # every worker pass reads every enabled schedule
def parse_schedule(text: str) -> Schedule:
    """Read a schedule; ValueError saying what is wrong, in one line."""
    cron = _friendly(text) or text
    parts = cron.split()
    if len(parts) != len(FIELDS):
        raise ValueError(f"{text!r} is not a schedule: use {FORMS}")
    values = [_field(part, *spec[1:], spec[0]) for part, spec in zip(parts, FIELDS, strict=True)]
    minutes, hours, days, months, weekdays = values
    return Schedule(
        text=text,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(day % 7 for day in weekdays),
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )


def schedule_problem(text: str, zone: ZoneInfo, now: datetime) -> str | None:
    """What is wrong with a schedule, in one line; None when it is fine and runs some day."""
    try:
        schedule = parse_schedule(text)
    except ValueError as exc:
        return str(exc)
    if schedule.next_after(now, zone) is None:
        return f"{text!r} never runs (no such day in the next five years)"
    return None
