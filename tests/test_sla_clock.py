"""Desk-hours arithmetic (``engine.sla_clock``): pure, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxdesk.engine.sla_clock import (
    DeskHours,
    NoDeskHours,
    add_desk_minutes,
    calendar_problems,
    desk_minutes_between,
    next_open,
    open_spans,
)

OFFICE = {
    day: [["09:00", "12:00"], ["13:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
}


@dataclass
class Cal:
    time_zone: str = "UTC"
    weekly: dict[str, Any] = field(default_factory=lambda: dict(OFFICE))
    exceptions: list[dict[str, Any]] = field(default_factory=list)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_around_the_clock_without_a_calendar() -> None:
    start = utc(2026, 12, 7, 23, 50)
    assert add_desk_minutes(None, start, 30) == utc(2026, 12, 8, 0, 20)
    assert desk_minutes_between(None, start, utc(2026, 12, 8, 0, 20)) == 30


def test_lunch_overnight_and_weekend_are_skipped() -> None:
    cal = DeskHours.of(Cal())
    # Monday 11:50 + 20 min: 10 before lunch, 10 after.
    assert add_desk_minutes(cal, utc(2026, 12, 7, 11, 50), 20) == utc(2026, 12, 7, 13, 10)
    # Friday 16:50 + 20 min: Monday 09:10.
    assert add_desk_minutes(cal, utc(2026, 12, 11, 16, 50), 20) == utc(2026, 12, 14, 9, 10)
    # Saturday noon + 0: Monday's opening.
    assert add_desk_minutes(cal, utc(2026, 12, 12, 12, 0), 0) == utc(2026, 12, 14, 9, 0)
    assert desk_minutes_between(cal, utc(2026, 12, 11, 16, 50), utc(2026, 12, 14, 9, 10)) == 20


def test_hours_across_midnight_count_as_one_stretch() -> None:
    night = Cal(weekly={"mon": [["22:00", "24:00"]], "tue": [["00:00", "02:00"]]})
    start = utc(2026, 12, 7, 23, 0)
    assert add_desk_minutes(night, start, 90) == utc(2026, 12, 8, 0, 30)
    assert next_open(night, utc(2026, 12, 7, 12, 0)) == (utc(2026, 12, 7, 22), utc(2026, 12, 8, 2))


def test_event_days_and_holidays_override_the_week() -> None:
    cal = Cal(
        exceptions=[
            {"date": "2026-12-08", "name": "Holiday", "hours": []},
            {"date": "2026-12-12", "name": "Summit", "hours": [["00:00", "24:00"]]},
        ]
    )
    # Monday 16:30 + 60: 30 on Monday, Tuesday closed, 30 on Wednesday.
    assert add_desk_minutes(cal, utc(2026, 12, 7, 16, 30), 60) == utc(2026, 12, 9, 9, 30)
    # Saturday is an event day open all day.
    assert add_desk_minutes(cal, utc(2026, 12, 12, 3, 0), 60) == utc(2026, 12, 12, 4, 0)


def test_a_zone_shifts_the_hours() -> None:
    tokyo = Cal(time_zone="Asia/Tokyo")  # UTC+9: 09:00 there is 00:00 UTC
    assert add_desk_minutes(tokyo, utc(2026, 12, 6, 23, 0), 30) == utc(2026, 12, 7, 0, 30)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", (2026, 3, 8), 23),  # springs forward
        ("America/New_York", (2026, 11, 1), 25),  # falls back
        ("Europe/Paris", (2026, 3, 29), 23),
        ("Europe/Paris", (2026, 10, 25), 25),
    ],
)
def test_a_dst_day_open_all_day_is_as_long_as_it_really_is(
    zone: str, day: tuple[int, int, int], hours: int
) -> None:
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[datetime(*day).weekday()]
    cal = DeskHours.of(Cal(time_zone=zone, weekly={weekday: [["00:00", "24:00"]]}))
    since = utc(*day) - timedelta(hours=12)  # Paris' midnight is before UTC's
    spans = list(open_spans(cal, since, until=since + timedelta(days=2)))
    assert [(end - start) for start, end in spans] == [timedelta(hours=hours)]
    start, _ = spans[0]
    assert desk_minutes_between(cal, start, start + timedelta(days=2)) == hours * 60
    assert add_desk_minutes(cal, start, hours * 60 - 1) == start + timedelta(minutes=hours * 60 - 1)


def test_office_hours_keep_local_time_across_a_dst_change() -> None:
    paris = Cal(time_zone="Europe/Paris")
    # Friday 27 March 16:00 CET (15:00 UTC) + 120 min: 60 on Friday, then Monday 30 March
    # 10:00 CEST (08:00 UTC), after the change to summer time on Sunday.
    assert add_desk_minutes(paris, utc(2026, 3, 27, 15, 0), 120) == utc(2026, 3, 30, 8, 0)


CALENDARS = [
    Cal(),
    Cal(time_zone="America/New_York", exceptions=[{"date": "2026-11-02", "hours": []}]),
    Cal(
        time_zone="Europe/Paris", weekly={"sat": [["00:00", "24:00"]], "sun": [["01:30", "03:00"]]}
    ),
    Cal(time_zone="Australia/Lord_Howe", weekly={"mon": [["00:00", "02:30"], ["23:00", "24:00"]]}),
]


@settings(max_examples=300, deadline=None)
@given(
    calendar=st.sampled_from([DeskHours.of(c) for c in CALENDARS] + [None]),
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=0, max_value=20_000),
)
def test_add_then_measure_gives_back_the_minutes(
    calendar: DeskHours | None, start: datetime, minutes: int
) -> None:
    due = add_desk_minutes(calendar, start, minutes)
    assert due >= start
    assert desk_minutes_between(calendar, start, due) == pytest.approx(minutes, abs=1e-6)
    # The sum of two legs is the whole.
    half = add_desk_minutes(calendar, start, minutes // 2)
    assert add_desk_minutes(calendar, half, minutes - minutes // 2) == due


def test_the_search_is_capped() -> None:
    # Past the checks (which refuse a calendar never open): a year of holidays.
    cal = DeskHours.of(Cal(weekly={"mon": [["09:00", "10:00"]]}))
    closed = DeskHours(cal.zone, ((),) * 7, {})
    with pytest.raises(NoDeskHours):
        add_desk_minutes(closed, utc(2026, 1, 1), 1)
    assert next_open(closed, utc(2026, 1, 1)) is None
    assert desk_minutes_between(closed, utc(2026, 1, 1), utc(2027, 1, 1)) == 0


@pytest.mark.parametrize(
    ("zone", "weekly", "exceptions", "problem"),
    [
        ("Mars/Olympus", OFFICE, [], "'Mars/Olympus' is not a time zone"),
        ("UTC", {"mon": [["09:00", "25:00"]]}, [], "weekly.mon: '25:00' is not a time from 00:00"),
        ("UTC", {"mon": [["17:00", "09:00"]]}, [], "weekly.mon: 17:00-09:00 ends before it starts"),
        ("UTC", {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, [], "hours overlap at 11:00"),
        ("UTC", {**OFFICE, "funday": [["09:00", "12:00"]]}, [], "unknown weekday 'funday'"),
        ("UTC", {}, [], "no weekly hours"),
        ("UTC", OFFICE, [{"date": "2026-02-30"}], "'2026-02-30' is not a date"),
        ("UTC", OFFICE, [{"date": "2026-02-03"}, {"date": "2026-02-03"}], "listed twice"),
        ("UTC", {"mon": [["00:00", "00:01"]] * 25}, [], "at most 24 stretches of hours a day"),
        ("UTC", OFFICE, [{"date": "2026-02-03", "name": 7}], "name must be text"),
        ("UTC", OFFICE, [{"date": "2026-02-03", "hours": [["9", "10"]]}], "'9' is not a time"),
    ],
)
def test_calendar_problems_one_line_each(
    zone: str, weekly: dict[str, Any], exceptions: list[dict[str, Any]], problem: str
) -> None:
    problems = calendar_problems(zone, weekly, exceptions)
    assert len(problems) == 1 and problem in problems[0], problems


def test_a_good_calendar_has_no_problem() -> None:
    assert calendar_problems("Europe/Paris", OFFICE, [{"date": "2026-12-24", "hours": []}]) == []
