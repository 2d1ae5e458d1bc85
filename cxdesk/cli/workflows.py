"""``cxdesk workflow list|show|copy|enable|disable``."""

from __future__ import annotations

import typer

from cxdesk.cli.common import (
    ADMIN_AS_OPTION,
    AS_OPTION,
    console,
    desk_engine,
    print_json,
    print_table,
    proven,
    proven_admin,
    setup_actor,
)
from cxdesk.engine import workflows as ops
from cxdesk.engine.scheduled import next_run
from cxdesk.i18n import N_, _
from cxdesk.local_time import shown_time
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import desk_zone
from cxdesk.store.models import Workflow

workflow_app = typer.Typer(
    help=N_("Workflows: event (or schedule) -> conditions -> tasks."), no_args_is_help=True
)


def _when(workflow: Workflow) -> str:
    """A workflow's trigger in words: its event (and delay) or its schedule."""
    if workflow.schedule is not None:
        return _("schedule: {schedule}").format(schedule=workflow.schedule)
    if workflow.delay_minutes:
        return _("{event} + {n} min").format(event=workflow.event, n=workflow.delay_minutes)
    return workflow.event


@workflow_app.command("list")
def workflow_list(as_user: str | None = AS_OPTION) -> None:
    """Every workflow, its event (or schedule), whether it is on and its next run."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        zone = desk_zone(session)
        rows = []
        for w in ops.list_workflows(session):
            upcoming = next_run(session, w)
            when = shown_time(upcoming, offset=True, zone=zone)  # "" for no run
            rows.append((w.name, _when(w), w.survey_name, _("on") if w.enabled else _("off"),
                         len(w.tasks), when))  # fmt: skip
    print_table(
        _("Workflows (times in {zone})").format(zone=zone),
        [N_("name"), N_("event"), N_("survey"), N_("enabled"), N_("tasks"), N_("next run")],
        rows,
    )


@workflow_app.command("show")
def workflow_show(name: str, as_user: str | None = AS_OPTION) -> None:
    """A workflow's event or schedule (delay, next run), conditions and tasks (JSON)."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        w = ops.get_workflow(session, name)
        zone, upcoming = desk_zone(session), next_run(session, w)
        print_json(
            {
                "name": w.name,
                "event": None if w.schedule is not None else w.event,
                "schedule": w.schedule,
                "delay_minutes": w.delay_minutes,
                "time_zone": str(zone),
                "next_run": upcoming.astimezone(zone).isoformat() if upcoming else None,
                "survey": w.survey_name,
                "enabled": w.enabled,
                "conditions": w.conditions,
                "tasks": w.tasks,
            }
        )


@workflow_app.command("copy")
def workflow_copy(
    name: str,
    new_name: str,
    team: str | None = typer.Option(None, "--team", help=N_("Retarget the copy to this team.")),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Copy a workflow (optionally for another team)."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        ops.copy_workflow(
            session, actor=setup_actor(session, admin), name=name, new_name=new_name, team=team
        )
    console.print(_("Copied {name} as {new_name}.").format(name=name, new_name=new_name))


@workflow_app.command("enable")
def workflow_enable(name: str, as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Turn a workflow on."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        ops.set_enabled(session, actor=setup_actor(session, admin), name=name, enabled=True)
    console.print(_("{name} enabled.").format(name=name))


@workflow_app.command("disable")
def workflow_disable(name: str, as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Turn a workflow off."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        ops.set_enabled(session, actor=setup_actor(session, admin), name=name, enabled=False)
    console.print(_("{name} disabled.").format(name=name))
