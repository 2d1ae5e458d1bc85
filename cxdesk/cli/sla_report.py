"""``cxdesk report sla``: per target, attainment, breaches and the time to the target (median,
90th percentile), overall or by team or expert (``store.sla_report``)."""

from __future__ import annotations

import typer

from cxdesk.cli.common import (
    AS_OPTION,
    console,
    desk_engine,
    print_json,
    print_table,
    proven,
    report_title,
)
from cxdesk.cli.loop import report_app
from cxdesk.i18n import N_, _
from cxdesk.store import reports
from cxdesk.store.db import read_session
from cxdesk.store.models import utcnow
from cxdesk.store.sla_report import NOTHING_YET, REPORT_COLUMNS, report_lines, sla_report


@report_app.command("sla")
def report_sla(
    by: str | None = typer.Option(None, "--by", help=N_("team or expert (the owner).")),
    since: str | None = typer.Option(
        None, "--since", help=N_("Tickets created since YYYY-MM-DD (local day) or 24h, 7d, 2w.")
    ),
    as_json: bool = typer.Option(False, "--json"),
    as_user: str | None = AS_OPTION,
) -> None:
    """Service levels: per target, attainment (met / (met + breached)), breaches and the
    time to the target (median and p90, wall-clock), over the tickets with a policy."""
    now = utcnow()
    start = reports.parse_since(since, now=now) if since else None
    reports.check_grouping(by)
    proven(as_user)
    with read_session(desk_engine()) as session:
        rows = sla_report(session, now=now, by=by, since=start)
    if as_json:
        print_json([row.to_dict() for row in rows])
        return
    lines = report_lines(rows)
    if not lines:
        if since:
            console.print(_("{nothing} since {since}").format(nothing=_(NOTHING_YET), since=since))
        else:
            console.print(_(NOTHING_YET))
        return
    print_table(report_title(N_("Service levels"), by, since), [by or "", *REPORT_COLUMNS], lines)
