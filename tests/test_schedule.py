"""Schedules (``engine.schedule``): cron and friendly forms, in a zone, through DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxdesk.engine.schedule import parse_schedule, schedule_problem

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("friendly", "cron"),
    [
        ("daily 18:00", "0 18 * * *"),
        ("weekdays 09:05", "5 9 * * 1-5"),
        ("Weekends 7:30", "30 7 * * 0,6"),
        ("mondays 08:00", "0 8 * * mon"),
        ("every 15 minutes", "*/15 * * * *"),
        ("every 2 hours", "0 */2 * * *"),
        ("hourly", "0 * * * *"),
    ],
)
def test_friendly_forms_are_the_cron_they_stand_for(friendly: str, cron: str) -> None:
    ours, theirs = parse_schedule(friendly), parse_schedule(cron)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    runs_a, runs_b = [start], [start]
    for _ in range(30):
        runs_a.append(ours.next_after(runs_a[-1], PARIS))  # type: ignore[arg-type]
        runs_b.append(theirs.next_after(runs_b[-1], PARIS))  # type: ignore[arg-type]
    assert runs_a == runs_b


def test_wall_times_are_the_zones_and_weekdays_skip_the_weekend() -> None:
    weekdays = parse_schedule("weekdays 09:00")
    # Saturday 5 December 2026, noon UTC: next is Monday 09:00 New York (EST, UTC-5).
    assert weekdays.next_after(utc(2026, 12, 5, 12), NEW_YORK) == utc(2026, 12, 7, 14)
    assert weekdays.latest(utc(2026, 12, 5, 12), NEW_YORK) == utc(2026, 12, 4, 14)
    every = parse_schedule("every 15 minutes")
    assert every.latest(utc(2026, 12, 5, 12, 14, 59), PARIS) == utc(2026, 12, 5, 12)
    assert every.latest(utc(2026, 12, 5, 12, 15), PARIS) == utc(2026, 12, 5, 12, 15)


def test_day_of_month_and_day_of_week_both_set_match_either() -> None:
    either = parse_schedule("0 12 1 * fri")  # the 1st, and every Friday (Vixie cron)
    days = {d for d in range(1, 32) if either.runs_on(date(2027, 1, d))}
    assert days == {1, 8, 15, 22, 29}  # 1 January 2027 is a Friday; no other 1st in January
    leap = parse_schedule("0 0 29 feb *")
    assert leap.next_after(NOW, PARIS) == datetime(2028, 2, 29, tzinfo=PARIS).astimezone(UTC)


def test_a_time_that_does_not_exist_or_exists_twice_runs_once() -> None:
    at_0230 = parse_schedule("daily 02:30")
    # 8 March 2026: New York jumps from 02:00 to 03:00; 02:30 runs once, at 03:30 EDT.
    [gap] = at_0230.instants_on(date(2026, 3, 8), NEW_YORK)
    assert gap == utc(2026, 3, 8, 7, 30)
    at_0130 = parse_schedule("daily 01:30")
    # 1 November 2026: 01:00-02:00 happens twice; 01:30 runs once, the first time (EDT).
    assert at_0130.instants_on(date(2026, 11, 1), NEW_YORK) == [utc(2026, 11, 1, 5, 30)]
    runs = [utc(2026, 10, 31)]
    while runs[-1] < utc(2026, 11, 3):
        runs.append(at_0130.next_after(runs[-1], NEW_YORK))  # type: ignore[arg-type]
    assert runs[1:] == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30),
                        utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)]  # fmt: skip
    quarter = parse_schedule("every 15 minutes")
    night = quarter.instants_on(date(2026, 11, 1), NEW_YORK)
    assert len(night) == len(set(night)) == 24 * 4  # no instant twice on the long day


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("daily 25:00", "hour: 25 is not from 0 to 23"),
        ("daily 6pm", "daily takes a time as HH:MM, not '6pm'"),
        ("61 * * * *", "minute: 61 is not from 0 to 59"),
        ("5-1 * * * *", "minute: the range 5-1 runs backwards"),
        ("0 0 31 2 *", "'0 0 31 2 *' never runs"),
        ("every 0 minutes", "minute: 0 is not from 1 to 60"),
        ("at teatime", "'at teatime' is not a schedule: use five cron fields"),
        ("0 9 * * mon-fri extra", "is not a schedule"),
        ("0 9 * * funday", "day of week: 'funday' is not a number"),
    ],
)
def test_a_bad_schedule_is_said_in_one_line(text: str, problem: str) -> None:
    said = schedule_problem(text, PARIS, NOW)
    assert said is not None and problem in said and "\n" not in said


def test_good_schedules_have_no_problem() -> None:
    for text in ("0 9 * * mon-fri", "*/5 8-18 * * *", "0 0 29 2 *", "weekdays 17:45"):
        assert schedule_problem(text, PARIS, NOW) is None


ZONES = ("Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
         "Asia/Kolkata", "UTC")  # fmt: skip
SCHEDULES = ("daily 02:30", "every 15 minutes", "30 0 * * *", "0 */3 * * 1-5", "59 23 * * *",
             "0,45 1,2 * * *", "every 7 minutes")  # fmt: skip


def _changes() -> list[datetime]:
    """Noon UTC of every day in 2026-2027 on which one of ``ZONES`` changes its clocks."""
    days = [datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=n) for n in range(730)]
    return [
        day
        for day in days
        for zone in map(ZoneInfo, ZONES)
        if day.astimezone(zone).utcoffset()
        != (day - timedelta(days=1)).astimezone(zone).utcoffset()
    ]


CHANGES = _changes()
ANY_TIME = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31))
NEAR_A_CHANGE = st.builds(
    lambda day, minutes: (day + timedelta(minutes=minutes)).replace(tzinfo=None),
    st.sampled_from(CHANGES),
    st.integers(min_value=-48 * 60, max_value=24 * 60),
)


@settings(max_examples=400, deadline=None)
@given(
    text=st.sampled_from(SCHEDULES),
    zone_name=st.sampled_from(ZONES),
    moment=st.one_of(ANY_TIME, NEAR_A_CHANGE),
)
def test_latest_and_next_agree_with_every_instant_of_the_days_around(
    text: str, zone_name: str, moment: datetime
) -> None:
    """The shortcuts of ``latest``/``next_after`` (hours past the bound not converted, the
    search stopped early) give what listing every instant of the days around gives, on
    days clocks change too (Lord Howe moves 30 minutes; Santiago at midnight)."""
    schedule, zone = parse_schedule(text), ZoneInfo(zone_name)
    now = moment.replace(tzinfo=UTC)
    local = now.astimezone(zone).date()
    every = sorted(
        {i for n in range(-3, 4) for i in schedule.instants_on(local + timedelta(days=n), zone)}
    )
    assert schedule.latest(now, zone) == max(i for i in every if i <= now)
    assert schedule.next_after(now, zone) == min(i for i in every if i > now)
