"""``cxdesk sla list|show``: the desk's SLA policies, their targets and calendars
(``store.sla_policies``; the arithmetic: ``engine.sla_clock``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import typer
from sqlmodel import select

from cxdesk.cli.common import (
    AS_OPTION,
    console,
    desk_engine,
    padded,
    print_json,
    print_table,
    proven,
)
from cxdesk.engine.sla_clock import WEEKDAYS, format_spans, next_open
from cxdesk.errors import NotFound
from cxdesk.i18n import N_, _
from cxdesk.store.db import read_session
from cxdesk.store.models import SlaCalendar, SlaPolicy, Team, utcnow
from cxdesk.store.sla import TARGET_WORDS
from cxdesk.store.sla_policies import TARGET_KEYS, get_calendar, get_policy, list_policies
from cxdesk.text import printable

sla_app = typer.Typer(
    help=N_("Service levels: SLA policies and their calendars."), no_args_is_help=True
)


def _minutes(value: int | None) -> str:
    if value is None:
        return "-"
    hours, minutes = divmod(value, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def policy_dict(policy: SlaPolicy, team: str | None, calendar: str | None) -> dict[str, Any]:
    return {
        "name": policy.name,
        "team": team,
        "priority": policy.priority,
        "calendar": calendar,
        **{key: getattr(policy, key) for key in TARGET_KEYS},
        "warn_percent": policy.warn_percent,
        "enabled": policy.enabled,
        "position": policy.position,
    }


@sla_app.command("list")
def sla_list(
    as_json: bool = typer.Option(False, "--json"), as_user: str | None = AS_OPTION
) -> None:
    """Every SLA policy in the order they are tried (the first enabled one that matches a
    ticket's team and priority applies), with its targets in desk time and its calendar."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        teams = {t.id: t.name for t in session.exec(select(Team)).all()}
        calendars = {c.id: c.name for c in session.exec(select(SlaCalendar)).all()}
        policies = [
            policy_dict(p, teams.get(p.team_id), calendars.get(p.calendar_id))
            for p in list_policies(session)
        ]
    if as_json:
        print_json(policies)
        return
    if not policies:
        console.print(_("No SLA policies: tickets get no due times (see README, Service levels)."))
        return
    print_table(
        N_("SLA policies (first match applies)"),
        ["#", N_("name"), N_("team"), N_("priority"), N_("first response"), N_("next response"),
         N_("resolution"), N_("warn"), N_("calendar"), N_("enabled")],
        [
            (p["position"] + 1, p["name"], p["team"] or _("any"), p["priority"] or _("any"),
             *(_minutes(p[key]) for key in TARGET_KEYS), f"{p['warn_percent']}%",
             p["calendar"] or _("around the clock"), _("on") if p["enabled"] else _("off"))
            for p in policies
        ],
    )  # fmt: skip


def open_line(calendar: SlaCalendar, now: datetime) -> str:
    """``open now, until Mon 18:00`` or ``closed, opens Mon 2026-12-14 08:00`` (local time)."""
    zone = ZoneInfo(calendar.time_zone)
    found = next_open(calendar, now)
    if found is None:
        return "closed, with no desk hours ahead"
    start, end = (moment.astimezone(zone) for moment in found)
    if start <= now:
        return f"open now, until {end:%a %Y-%m-%d %H:%M} ({calendar.time_zone})"
    return f"closed, opens {start:%a %Y-%m-%d %H:%M} ({calendar.time_zone})"


@sla_app.command("show")
def sla_show(
    name: str, as_json: bool = typer.Option(False, "--json"), as_user: str | None = AS_OPTION
) -> None:
    """A policy's targets and its calendar: weekly hours, exceptions, and whether the desk is
    open now or when it opens. NAME may also be a calendar's."""
    proven(as_user)
    now = utcnow()
    with read_session(desk_engine()) as session:
        try:
            policy: SlaPolicy | None = get_policy(session, name)
        except NotFound:
            policy = None
            try:
                calendar: SlaCalendar | None = get_calendar(session, name)
            except NotFound:
                raise NotFound(
                    _("No SLA policy or calendar named {name!r} (see: cxdesk sla list)").format(
                        name=name
                    )
                ) from None
        if policy is not None:
            team = session.get(Team, policy.team_id) if policy.team_id else None
            calendar = session.get(SlaCalendar, policy.calendar_id) if policy.calendar_id else None
            record: dict[str, Any] = policy_dict(
                policy, team.name if team else None, calendar.name if calendar else None
            )
        else:
            record = {}
        if calendar is not None:
            record["calendar_hours"] = {
                "name": calendar.name,
                "time_zone": calendar.time_zone,
                "weekly": calendar.weekly,
                "exceptions": calendar.exceptions,
                "now": open_line(calendar, now),
            }
    if as_json:
        print_json(record)
        return
    if policy is not None:
        said = _("SLA policy {name}").format(name=printable(policy.name, lines=False))
        console.print(said, markup=False)
        if policy.enabled:
            applies = _("  applies to      team {team}, priority {priority} (enabled; tried #{n})")
        else:
            applies = _("  applies to      team {team}, priority {priority} (disabled; tried #{n})")
        team_name, priority = record["team"] or _("any"), record["priority"] or _("any")
        console.print(
            applies.format(team=team_name, priority=priority, n=policy.position + 1), markup=False
        )
        for key in TARGET_KEYS:
            label = _(TARGET_WORDS[key.removesuffix("_minutes")])
            console.print(f"  {padded(label)}{_minutes(record[key])}", markup=False)
        console.print(
            _("  warning at      {warn_percent}% of each target").format(
                warn_percent=policy.warn_percent
            ),
            markup=False,
        )
        if calendar is None:
            console.print(
                _("  calendar        none: the clock runs around the clock"), markup=False
            )
    if calendar is None:
        return
    console.print(
        _("Calendar {name}: {now}").format(
            name=printable(calendar.name, lines=False), now=open_line(calendar, now)
        ),
        markup=False,
    )
    print_table(
        N_("Weekly hours"),
        [N_("day"), N_("hours")],
        [(day, format_spans(calendar.weekly.get(day) or [])) for day in WEEKDAYS],
    )
    if calendar.exceptions:
        print_table(
            N_("Exceptions"),
            [N_("date"), N_("name"), N_("hours")],
            [(str(item.get("date")), item.get("name") or "", format_spans(item.get("hours") or []))
             for item in sorted(calendar.exceptions, key=lambda item: str(item.get("date")))],
        )  # fmt: skip
