"""``cxdesk tickets list``: a read, so its own module: it loads the store's ticket reads
without the engine (workflows, dispatch, the pull) that ``cli.tickets``' writes need. The
``tickets`` group's Typer app lives here (``cli.views`` adds ``tickets export`` to it)."""

from __future__ import annotations

import typer

from cxdesk.cli.common import AS_OPTION, desk_engine, print_json, print_table, proven, shown_at
from cxdesk.i18n import N_
from cxdesk.labels import label
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session
from cxdesk.store.models import utcnow
from cxdesk.store.sla import sla_view
from cxdesk.store.sla_display import sla_words

tickets_app = typer.Typer(help=N_("Many tickets: list."), no_args_is_help=True)


@tickets_app.command("list")
def tickets_list(
    status: str | None = typer.Option(None, "--status"),
    team: str | None = typer.Option(None, "--team"),
    owner: str | None = typer.Option(None, "--owner", help=N_("A username, or 'none'.")),
    limit: int = typer.Option(200, "--limit", min=1, max=100_000),
    as_json: bool = typer.Option(False, "--json"),
    as_user: str | None = AS_OPTION,
) -> None:
    """Tickets, newest first, filtered by status, team and owner."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        found = ops.list_tickets(session, status=status, team=team, owner=owner, limit=limit)
        records = ops.tickets_to_dicts(session, found)
    if as_json:
        print_json(records)
        return
    now = utcnow()
    print_table(
        N_("Tickets"),
        [
            N_("key"),
            N_("title"),
            N_("status"),
            N_("sla"),
            N_("priority"),
            N_("team"),
            N_("owner"),
            N_("customer"),
            N_("created"),
        ],  # fmt: skip
        [
            (
                r["key"],
                r["title"],
                label(r["status"]),
                sla_words(sla_view(t, now), now),
                label(r["priority"]),
                r["team"],
                r["owner"],
                r["customer_name"],
                shown_at(r["created_at"]),
            )  # fmt: skip
            for r, t in zip(records, found, strict=True)
        ],
    )
