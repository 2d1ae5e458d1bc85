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
from cxdesk.store.db import read_session, transaction

workflow_app = typer.Typer(help="Workflows: event -> conditions -> tasks.", no_args_is_help=True)


@workflow_app.command("list")
def workflow_list(as_user: str | None = AS_OPTION) -> None:
    """Every workflow, its event and whether it is on."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        rows = [
            (w.name, w.event, w.survey_name, "on" if w.enabled else "off", len(w.tasks))
            for w in ops.list_workflows(session)
        ]
    print_table("Workflows", ["name", "event", "survey", "enabled", "tasks"], rows)


@workflow_app.command("show")
def workflow_show(name: str, as_user: str | None = AS_OPTION) -> None:
    """A workflow's event, conditions and tasks (JSON)."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        w = ops.get_workflow(session, name)
        print_json(
            {
                "name": w.name,
                "event": w.event,
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
    team: str | None = typer.Option(None, "--team", help="Retarget the copy to this team."),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Copy a workflow (optionally for another team)."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        ops.copy_workflow(
            session, actor=setup_actor(session, admin), name=name, new_name=new_name, team=team
        )
    console.print(f"Copied {name} as {new_name}.")


@workflow_app.command("enable")
def workflow_enable(name: str, as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Turn a workflow on."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        ops.set_enabled(session, actor=setup_actor(session, admin), name=name, enabled=True)
    console.print(f"{name} enabled.")


@workflow_app.command("disable")
def workflow_disable(name: str, as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Turn a workflow off."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        ops.set_enabled(session, actor=setup_actor(session, admin), name=name, enabled=False)
    console.print(f"{name} disabled.")
