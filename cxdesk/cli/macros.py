"""``cxdesk macro add|list|show|delete`` and ``cxdesk ticket macro KEY NAME`` (``engine.macros``).

A macro's actions come either from a file (``--from``: TOML with ``[[actions]]`` tables, or
JSON: a list of actions) or from options: ``--set FIELD=VALUE`` (repeatable), ``--note TEXT``,
``--reply TEXT`` (``-``: read it from stdin) and ``--channel email|sms``.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import typer

from cxdesk.cli.common import (
    ADMIN_AS_OPTION,
    AS_OPTION,
    acting_user,
    console,
    desk_engine,
    parse_pairs,
    print_json,
    print_table,
    proven,
    proven_admin,
    setup_actor,
)
from cxdesk.cli.tickets import IF_VERSION_OPTION, ticket_app
from cxdesk.engine import macros as ops
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, in_language
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_team
from cxdesk.store.models import User
from cxdesk.store.user_files import read_regular_file
from cxdesk.text import printable

macro_app = typer.Typer(
    help=N_("Macros: named actions (set fields, a note, a reply) applied to a ticket at once."),
    no_args_is_help=True,
)
MAX_FILE_BYTES = 64 * 1024


def actions_from_file(path: Path) -> list[dict[str, Any]]:
    """A macro file's actions: ``.json`` a list (or ``{"actions": [...]}``), else TOML."""
    content = read_regular_file(path, limit=MAX_FILE_BYTES, what="macro file")
    try:
        text = content.decode("utf-8")
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DeskError(
            _("{path}: not a macro file ({reason})").format(path=path, reason=reason)
        ) from None
    actions = data.get("actions") if isinstance(data, dict) else data
    if not isinstance(actions, list):
        raise DeskError(
            _("{path}: no actions (TOML: [[actions]] tables; JSON: a list)").format(path=path)
        )
    return actions


def actions_from_options(
    sets: list[str], note: str | None, reply: str | None, channel: str | None
) -> list[dict[str, Any]]:
    """The actions the options describe, in the order a macro applies them."""
    actions: list[dict[str, Any]] = []
    if sets:
        actions.append({"type": "set", **parse_pairs(sets, "--set")})
    if note is not None:
        actions.append({"type": "note", "body": note})
    if reply == "-":
        if sys.stdin.isatty():
            raise DeskError(
                _("--reply - reads the reply from stdin: pipe it in (or give the text)")
            )
        reply = sys.stdin.read(ops.MAX_TEXT_CHARS + 1)
    if reply is not None:
        actions.append(
            {"type": "reply", "body": reply, **({"channel": channel} if channel else {})}
        )
    elif channel is not None:
        raise DeskError(_("--channel goes with --reply"))
    return actions


@macro_app.command("add")
def macro_add(
    name: str,
    team: str | None = typer.Option(
        None, "--team", help=N_("Only for this team (default: shared).")
    ),
    from_file: Path | None = typer.Option(
        None, "--from", help=N_("TOML ([[actions]] tables) or JSON (a list) of actions.")
    ),
    sets: list[str] = typer.Option(  # noqa: B008
        [], "--set", help=N_("FIELD=VALUE: status, priority, team or owner ('' unassigns).")
    ),
    note: str | None = typer.Option(None, "--note", help=N_("An internal note (piped text).")),
    reply: str | None = typer.Option(
        None, "--reply", help=N_("A reply to the customer (piped text); '-' reads it from stdin.")
    ),
    channel: str | None = typer.Option(None, "--channel", help=N_("email or sms (with --reply).")),
    replace: bool = typer.Option(False, "--replace", help=N_("Replace a macro of this name.")),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Add a macro (admins): its actions from --from FILE, or from --set/--note/--reply."""
    if from_file is not None and (sets or note is not None or reply is not None or channel):
        raise DeskError(_("Give the actions either with --from or with --set/--note/--reply"))
    if from_file is not None:
        actions = actions_from_file(from_file)
    else:
        actions = actions_from_options(sets, note, reply, channel)
    if not actions:
        raise DeskError(_("A macro needs actions: --from FILE, or --set/--note/--reply"))
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        macro = ops.save_macro(
            session, actor=setup_actor(session, admin), name=name, actions=actions, team=team,
            replace=replace,
        )  # fmt: skip
        what = ops.describe(macro, labelled=True)
    console.print(
        printable(_("Macro {name} saved: {what}").format(name=macro.name, what=what), lines=False),
        soft_wrap=True,
    )


@macro_app.command("list")
def macro_list(
    team: str | None = typer.Option(None, "--team", help=N_("That team's macros and the shared.")),
    as_json: bool = typer.Option(False, "--json"),
    as_user: str | None = AS_OPTION,
) -> None:
    """Every macro: its team (or shared) and what it does."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        team_id = get_team(session, team).id if team else None
        teams = ops.team_names(session)
        macros = ops.list_macros(session, team_id=team_id)
        if as_json:  # for scripts: the same English words in every language
            with in_language("en"):
                print_json(
                    [
                        {"name": m.name, "team": teams.get(m.team_id), "does": ops.describe(m)}
                        for m in macros
                    ]
                )
            return
        rows = [
            (m.name, teams.get(m.team_id) or _("(shared)"), ops.describe(m, labelled=True))
            for m in macros
        ]
    print_table(N_("Macros"), [N_("name"), N_("team"), N_("does")], rows)


@macro_app.command("show")
def macro_show(name: str, as_user: str | None = AS_OPTION) -> None:
    """A macro's team and actions (JSON)."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        macro = ops.get_macro(session, name)
        maker = session.get(User, macro.created_by_id) if macro.created_by_id else None
        print_json(
            {
                "name": macro.name,
                "team": ops.team_names(session).get(macro.team_id),
                "actions": macro.actions,
                "created_by": maker.username if maker else None,
                "created_at": macro.created_at.isoformat(),
            }
        )


@macro_app.command("delete")
def macro_delete(name: str, as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Delete a macro (admins)."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        ops.delete_macro(session, actor=setup_actor(session, admin), name=name)
    console.print(printable(_("Macro {name} deleted.").format(name=name), lines=False))


@ticket_app.command("macro")
def ticket_macro(
    key: str,
    name: str,
    as_user: str | None = AS_OPTION,
    if_version: int | None = IF_VERSION_OPTION,
) -> None:
    """Apply a macro to a ticket: its fields, note and reply in one write, or nothing."""
    who = proven(as_user)
    with unit_of_work(desk_engine()) as session:
        done = ops.apply_macro(
            session, actor=acting_user(session, who), key=key, name=name, if_version=if_version
        )
    typer.echo(printable(f"{done.summary()}.", lines=False))
