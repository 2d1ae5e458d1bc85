"""SLA calendars and policies as data: checked, saved, read (the seed's ``[[sla_calendars]]``
and ``[[sla_policies]]``, ``cxdesk sla list|show``).

A calendar is a time zone, weekly hours and dated exceptions (``engine.sla_clock`` does the
arithmetic and the checks). A policy gives targets in desk minutes to the tickets of a team
(or any) and priority (or any); the first enabled one by ``position`` that matches a ticket
applies (``store.sla.matching_policy``). A seed orders its policies by their place in the
file (``order_policies``). Every problem is said in one line; a seed entry lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, TypeVar

from sqlmodel import Session, col, select

from cxdesk.engine.sla_clock import calendar_problems
from cxdesk.errors import DeskError, NotFound
from cxdesk.i18n import _
from cxdesk.store import directory
from cxdesk.store.models import Priority, SlaCalendar, SlaPolicy
from cxdesk.text import text_problem

TARGET_KEYS = ("first_response_minutes", "next_response_minutes", "resolution_minutes")
MAX_TARGET_MINUTES = 366 * 24 * 60
DEFAULT_WARN_PERCENT = 75
_Named = TypeVar("_Named", SlaCalendar, SlaPolicy)


class SlaProblems(DeskError):
    """What is wrong with a calendar or a policy, one line each (``problems``)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def default_time_zone(session: Session) -> str:
    """The desk's time zone (``directory.desk_zone``: its ``time_zone`` setting, else UTC)."""
    return directory.desk_zone(session).key


# -- calendars --------------------------------------------------------------------------------


def _named(found: _Named | None, name: str, what: str, every: Sequence[_Named]) -> _Named:
    if found is None:
        known = ", ".join(item.name for item in every) or "none yet"
        raise NotFound(
            _("No SLA {what} named {name!r} (known: {known})").format(
                what=what, name=name, known=known
            )
        )
    return found


def get_calendar(session: Session, name: str) -> SlaCalendar:
    found = session.exec(select(SlaCalendar).where(SlaCalendar.name == name)).first()
    return found or _named(found, name, "calendar", list_calendars(session))


def list_calendars(session: Session) -> Sequence[SlaCalendar]:
    return session.exec(select(SlaCalendar).order_by(col(SlaCalendar.name))).all()


def _plain_exceptions(exceptions: object) -> object:
    """TOML dates (``date = 2026-12-08``) as text, as the JSON column keeps them."""
    if not isinstance(exceptions, list):
        return exceptions
    return [
        {**item, "date": item["date"].isoformat()}
        if isinstance(item, dict) and isinstance(item.get("date"), date)
        else item
        for item in exceptions
    ]


def save_calendar(
    session: Session, *, name: str, time_zone: str | None, weekly: object, exceptions: object
) -> bool:
    """Create the calendar or bring it in line; True if it was created. ``time_zone`` None:
    the desk's. ``SlaProblems`` lists every problem and nothing is written then."""
    exceptions = _plain_exceptions(exceptions)
    zone = default_time_zone(session) if time_zone is None else time_zone
    problems = [f"name {p}" for p in [text_problem(name)] if p is not None]
    problems += calendar_problems(zone, weekly, exceptions)
    if problems:
        raise SlaProblems(problems)
    assert isinstance(weekly, dict) and isinstance(exceptions, list)
    weekly = {day: [list(pair) for pair in hours] for day, hours in weekly.items()}
    existing = session.exec(select(SlaCalendar).where(SlaCalendar.name == name)).first()
    wanted = (zone, weekly, exceptions)
    if (
        existing is not None
        and (existing.time_zone, existing.weekly, existing.exceptions) == wanted
    ):
        return False
    calendar = existing or SlaCalendar(name=name)
    calendar.time_zone, calendar.weekly, calendar.exceptions = wanted
    session.add(calendar)
    session.flush()
    return existing is None


def add_event_days(session: Session, name: str, days: Sequence[date], *, label: str) -> None:
    """Make ``days`` event days open all day on the calendar (the demo desk's: tried on any
    day, its clocks run). Days the calendar already lists are left as they are."""
    calendar = get_calendar(session, name)
    listed = {str(item.get("date")) for item in calendar.exceptions}
    added = [
        {"date": day.isoformat(), "name": label, "hours": [["00:00", "24:00"]]}
        for day in days
        if day.isoformat() not in listed
    ]
    if added:
        calendar.exceptions = [*calendar.exceptions, *added]
        session.add(calendar)
        session.flush()


# -- policies ---------------------------------------------------------------------------------


def get_policy(session: Session, name: str) -> SlaPolicy:
    found = session.exec(select(SlaPolicy).where(SlaPolicy.name == name)).first()
    return found or _named(found, name, "policy", list_policies(session))


def list_policies(session: Session) -> Sequence[SlaPolicy]:
    """In the order they are tried: the first enabled one that matches a ticket applies."""
    return session.exec(
        select(SlaPolicy).order_by(col(SlaPolicy.position), col(SlaPolicy.id))
    ).all()


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def save_policy(session: Session, *, name: str, settings: dict[str, Any]) -> bool:
    """Create the policy or bring it in line with ``settings`` (``team``, ``priority``,
    ``calendar``: names or None for any/around the clock; the three ``*_minutes`` targets,
    None for not measured; ``warn_percent``; ``enabled``). True if created; ``SlaProblems``
    lists every problem and nothing is written then. A new policy goes last."""
    problems = [f"name {p}" for p in [text_problem(name)] if p is not None]
    values: dict[str, Any] = {}
    team, priority, calendar = (
        settings.get("team"),
        settings.get("priority"),
        settings.get("calendar"),
    )
    values["team_id"] = None
    if team is not None:
        try:
            values["team_id"] = directory.get_team(session, str(team)).id
        except DeskError as exc:
            problems.append(str(exc))
    if priority is not None and priority not in Priority.__members__:
        problems.append(f"priority must be one of {', '.join(Priority)} (or left out: any)")
    values["priority"] = priority
    values["calendar_id"] = None
    if calendar is not None:
        try:
            values["calendar_id"] = get_calendar(session, str(calendar)).id
        except DeskError as exc:
            problems.append(str(exc))
    for key in TARGET_KEYS:
        minutes = settings.get(key)
        if minutes is not None and (not _whole(minutes) or not 1 <= minutes <= MAX_TARGET_MINUTES):
            problems.append(
                f"{key} must be a whole number of minutes from 1 to {MAX_TARGET_MINUTES}"
            )
        values[key] = minutes
    if all(settings.get(key) is None for key in TARGET_KEYS):
        problems.append(f"no target: give at least one of {', '.join(TARGET_KEYS)}")
    warn = settings.get("warn_percent", DEFAULT_WARN_PERCENT)
    if not _whole(warn) or not 1 <= warn <= 99:
        problems.append("warn_percent must be a whole number from 1 to 99")
    values["warn_percent"] = warn
    values["enabled"] = bool(settings.get("enabled", True))
    if problems:
        raise SlaProblems(problems)
    existing = session.exec(select(SlaPolicy).where(SlaPolicy.name == name)).first()
    if existing is None:
        last = session.exec(select(SlaPolicy).order_by(col(SlaPolicy.position).desc())).first()
        policy = SlaPolicy(name=name, position=last.position + 1 if last else 0, **values)
        session.add(policy)
        session.flush()
        return True
    changed = {key: value for key, value in values.items() if getattr(existing, key) != value}
    if changed:
        for key, value in changed.items():
            setattr(existing, key, value)
        session.add(existing)
        session.flush()
    return False


def order_policies(session: Session, names: Sequence[str]) -> None:
    """Put the policies named (a seed's, in file order) first, the others after as they were."""
    policies = list(list_policies(session))
    rank = {name: index for index, name in enumerate(names)}
    policies.sort(key=lambda p: (rank.get(p.name, len(rank)), p.position, p.id or 0))
    for position, policy in enumerate(policies):
        if policy.position != position:
            policy.position = position
            session.add(policy)
    session.flush()


# -- the seed's sections (``cxdesk.seed``) -------------------------------------------------------

SEED_SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "sla_calendars": {
        "name": (str, True),
        "time_zone": (str, False),
        "weekly": (dict, True),
        "exceptions": (list, False),
    },
    "sla_policies": {
        "name": (str, True),
        "team": (str, False),
        "priority": (str, False),
        "calendar": (str, False),
        **{key: (int, False) for key in TARGET_KEYS},
        "warn_percent": (int, False),
        "enabled": (bool, False),
    },
}


def apply_calendar_entry(session: Session, entry: dict[str, Any]) -> bool:
    """A seed's ``[[sla_calendars]]`` entry; its time zone left out: the desk's."""
    return save_calendar(
        session,
        name=entry["name"],
        time_zone=entry.get("time_zone"),
        weekly=entry["weekly"],
        exceptions=entry.get("exceptions", []),
    )


def apply_policy_entry(session: Session, entry: dict[str, Any]) -> bool:
    """A seed's ``[[sla_policies]]`` entry (its order: ``order_policies`` after them all)."""
    return save_policy(session, name=entry["name"], settings=entry)


def order_seed_policies(session: Session, entries: object) -> None:
    """The seed's policies tried in the order the file lists them."""
    if isinstance(entries, list) and entries:
        order_policies(
            session,
            [e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)],
        )
