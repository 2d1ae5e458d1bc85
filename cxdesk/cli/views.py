"""``cxdesk tickets export`` and ``cxdesk view save|list|show|delete``: the filtered ticket list
as a file, and named filters (saved views) to recall it by.

Every command takes the ticket list's filter options; ``--view NAME`` starts from a saved
view and the other options change it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cxdesk.cli.common import AS_OPTION, acting_user, desk_engine, print_table, proven, speak_as
from cxdesk.cli.tickets_list import tickets_app
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, ngettext
from cxdesk.store.db import read_session, transaction
from cxdesk.store.export import FORMATS, export_tickets
from cxdesk.store.views import (
    Sort,
    TicketFilter,
    build_filter,
    delete_view,
    get_view,
    list_views,
    save_view,
    ticket_summary,
)

view_app = typer.Typer(help=N_("Saved views: named ticket-list filters."), no_args_is_help=True)

DAYS_OPTION = typer.Option(  # 30: store.views.DEFAULT_DAYS (help text is fixed at import)
    None, "--days", help=N_("Created in the last N days (default 30; 0 = all time).")
)
FROM_OPTION = typer.Option(None, "--from", help=N_("Created on or after this day (YYYY-MM-DD)."))
TO_OPTION = typer.Option(None, "--to", help=N_("Created on or before this day (YYYY-MM-DD)."))
TEAM_OPTION = typer.Option(None, "--team", help=N_("Current team."))
OWNER_OPTION = typer.Option(None, "--owner", help=N_("A username, or 'none' for unowned."))
STATUS_OPTION = typer.Option(None, "--status")
PRIORITY_OPTION = typer.Option(None, "--priority", help=N_("low, medium, high or critical."))
TAG_OPTION = typer.Option(None, "--tag")
TEXT_OPTION = typer.Option(None, "--text", help=N_("Words in the key, title, customer or comment."))
CLI_LABELS = {"days": "--days", "from": "--from", "to": "--to"}
VIEW_OPTION = typer.Option(
    None, "--view", help=N_("Start from this saved view (the acting user's).")
)


def _base_view(view: str | None, who: str) -> TicketFilter | None:
    if view is None:
        return None
    with read_session(desk_engine()) as session:
        return get_view(session, actor=acting_user(session, who), name=view)


@tickets_app.command("export")
def tickets_export(
    output: Path = typer.Option(..., "--output", "-o", help=N_("The file to write.")),
    fmt: str | None = typer.Option(None, "--format", help=N_("csv or xlsx (default: the suffix).")),
    days: int | None = DAYS_OPTION,
    date_from: str | None = FROM_OPTION,
    date_to: str | None = TO_OPTION,
    team: str | None = TEAM_OPTION,
    owner: str | None = OWNER_OPTION,
    status: str | None = STATUS_OPTION,
    priority: str | None = PRIORITY_OPTION,
    tag: str | None = TAG_OPTION,
    text: str | None = TEXT_OPTION,
    view: str | None = VIEW_OPTION,
    as_user: str | None = AS_OPTION,
    sort: str = typer.Option("created_at", "--sort", help=N_("The column to sort by.")),
    ascending: bool = typer.Option(False, "--ascending", help=N_("Oldest / A first.")),
) -> None:
    """Write the filtered ticket list to .csv or .xlsx (dates typed in .xlsx)."""
    if fmt is not None and fmt.lower() not in FORMATS:
        raise DeskError(_("--format must be csv or xlsx, not {fmt!r}").format(fmt=fmt))
    order = Sort(sort, descending=not ascending)
    who = proven(as_user)
    flt = build_filter(
        base=_base_view(view, who), days=days, date_from=date_from, date_to=date_to,
        team=team, owner=owner, status=status, priority=priority, tag=tag, text=text,
        labels=CLI_LABELS,
    )  # fmt: skip
    written = export_tickets(desk_engine(), flt, output, fmt=fmt, sort=order)
    said = ngettext(
        "{n} ticket written to {path} ({filter}).",
        "{n} tickets written to {path} ({filter}).",
        written,
    )
    typer.echo(said.format(n=written, path=output, filter=flt.describe()))


@view_app.command("save")
def view_save(
    name: str,
    as_user: str | None = AS_OPTION,
    days: int | None = DAYS_OPTION,
    date_from: str | None = FROM_OPTION,
    date_to: str | None = TO_OPTION,
    team: str | None = TEAM_OPTION,
    owner: str | None = OWNER_OPTION,
    status: str | None = STATUS_OPTION,
    priority: str | None = PRIORITY_OPTION,
    tag: str | None = TAG_OPTION,
    text: str | None = TEXT_OPTION,
) -> None:
    """Save the filter the options describe as NAME (saving a name again replaces it)."""
    flt = build_filter(
        days=days, date_from=date_from, date_to=date_to, team=team, owner=owner,
        status=status, priority=priority, tag=tag, text=text, labels=CLI_LABELS,
    )  # fmt: skip
    who = proven(as_user)
    with transaction(desk_engine()) as session:
        saved = save_view(session, actor=acting_user(session, who), name=name, flt=flt)
    typer.echo(_("View {name!r} saved: {filter}.").format(name=saved.name, filter=flt.describe()))


@view_app.command("list")
def view_list(as_user: str | None = AS_OPTION) -> None:
    """Your saved views and the desk's shared ones."""
    who = proven(as_user)
    with read_session(desk_engine()) as session:
        views = list_views(session, actor=acting_user(session, who))
        rows = [
            (v.name, "shared" if v.owner_id is None else who,
             TicketFilter.from_json(v.filters).describe())
            for v in views
        ]  # fmt: skip
    print_table(N_("Saved views"), [N_("name"), N_("owner"), N_("filter")], rows)


@view_app.command("show")
def view_show(name: str, as_user: str | None = AS_OPTION) -> None:
    """A saved view's filter and its counts by status now."""
    who = proven(as_user)
    with read_session(desk_engine()) as session:
        flt = get_view(session, actor=acting_user(session, who), name=name)
        summary = ticket_summary(session, flt)
    typer.echo(f"{name}: {flt.describe()}")
    typer.echo(summary.line())


@view_app.command("delete")
def view_delete(name: str, as_user: str | None = AS_OPTION) -> None:
    """Delete one of your saved views."""
    who = proven(as_user)
    with transaction(desk_engine()) as session:
        delete_view(session, actor=acting_user(session, who), name=name)
    typer.echo(_("View {name!r} deleted.").format(name=name))


def board(
    poll: float = typer.Option(2.0, "--poll", min=0.2, help=N_("Seconds between refreshes.")),
) -> None:
    """The hall board: walk-ins waiting (position, estimate), now serving; read-only, no login."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise DeskError(_("the board needs a terminal (input or output is redirected)"))
    from cxdesk.screens.board import BoardApp  # Textual loads only when the board opens

    engine = desk_engine()
    speak_as(engine, None)  # the environment's language, else the desk's; the desk's zone
    BoardApp(engine, poll_seconds=poll).run()


def register(app: typer.Typer) -> None:
    """``tickets export`` joins the ``tickets`` group when this module is imported."""
    app.add_typer(view_app, name="view")
    app.command("board")(board)
