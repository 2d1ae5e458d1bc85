"""Closing the loop from the CLI: ``cxdesk contact``, ``campaign``, ``responses``, ``report``.

Contacts and survey answers come in as CSV files (bad rows reported by line, good rows kept);
campaigns turn a filtered set of contacts into tagged tickets in one transaction; the report
prints CSAT and NPS.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cxdesk.cli.common import (
    ADMIN_AS_OPTION,
    AS_OPTION,
    console,
    desk_engine,
    err_console,
    print_json,
    print_table,
    proven,
    proven_admin,
    report_title,
    setup_actor,
)
from cxdesk.config import load_settings
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.responses import import_responses
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _
from cxdesk.store import campaigns as campaign_ops
from cxdesk.store import contacts as contact_ops
from cxdesk.store import reports
from cxdesk.store.csv_files import ImportReport, read_csv
from cxdesk.store.db import read_session, transaction
from cxdesk.text import printable

contact_app = typer.Typer(help=N_("The contact directory campaigns reach."), no_args_is_help=True)
responses_app = typer.Typer(help=N_("Survey answers collected elsewhere."), no_args_is_help=True)
survey_app = typer.Typer(help=N_("The survey web server customers answer."), no_args_is_help=True)
report_app = typer.Typer(help=N_("Results: CSAT and NPS, service levels."), no_args_is_help=True)
campaign_app = typer.Typer(
    help=N_("Proactive campaigns: a tagged ticket per contact."), no_args_is_help=True
)

FILTER_HELP = N_(
    "ATTR=VALUE (also !=, <, <=, >, >=; = ignores case; < and > compare text, e.g. ISO "
    "dates); repeatable, all must hold."
)


def _print_problems(report: ImportReport) -> None:
    """Each refused row on stderr, by line; the caller decides the exit code."""
    for problem in report.problems:
        err_console.print(printable(f"  {problem}"), soft_wrap=True)


@contact_app.command("import")
def contact_import(
    file: Path = typer.Argument(
        ...,
        help=N_("CSV with name, email, phone, language (en, ja, fr, it) and any other columns."),
    ),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Import contacts: extra columns become attributes; a known email is updated.

    Good rows are kept; each bad row is reported by its line and the exit code is then 1.
    """
    admin = proven_admin(as_user)
    csv_file = read_csv(file)
    with transaction(desk_engine()) as session:
        report = contact_ops.import_contacts(
            session, actor=setup_actor(session, admin), csv_file=csv_file
        )
    console.print(report.line("contact"))
    _print_problems(report)
    if report.problems:
        raise typer.Exit(1)


@contact_app.command("list")
def contact_list(
    filters: list[str] = typer.Option([], "--filter", help=FILTER_HELP),  # noqa: B006
    limit: int = typer.Option(200, "--limit", min=1, help=N_("Show at most this many.")),
    as_json: bool = typer.Option(False, "--json"),
    as_user: str | None = AS_OPTION,
) -> None:
    """Contacts, by email, filtered by attribute."""
    parsed = contact_ops.parse_filters(filters)
    proven(as_user)
    with read_session(desk_engine()) as session:
        total = contact_ops.count_contacts(session, parsed)
        found = contact_ops.list_contacts(session, parsed, limit=limit)
        records = [contact_ops.contact_to_dict(c) for c in found]
    if as_json:
        print_json(records)
        return
    print_table(
        (
            _("Contacts ({total} matching, first {n})")
            if total > limit
            else _("Contacts ({total} matching)")
        ).format(total=total, n=len(records)),
        [N_("name"), N_("email"), N_("phone"), N_("language"), N_("attributes")],
        [
            (
                r["name"],
                r["email"],
                r["phone"],
                r["language"] or "",
                ", ".join(f"{k}={v}" for k, v in sorted(r["attributes"].items())),
            )
            for r in records
        ],
    )


@campaign_app.command("create")
def campaign_create(
    name: str = typer.Argument(..., help=N_("Unique; becomes a tag on every ticket.")),
    filters: list[str] = typer.Option([], "--filter", help=FILTER_HELP),  # noqa: B006
    subject: str = typer.Option(..., "--subject", help=N_("Each ticket's title.")),
    description: str = typer.Option("", "--description", help=N_("Stored as ticket data.")),
    team: str = typer.Option(..., "--team", help=N_("The team whose queue gets the tickets.")),
    status: str = typer.Option("new", "--status"),
    assignee: str | None = typer.Option(None, "--assignee", help=N_("Owner: a member of --team.")),
    preview: bool = typer.Option(False, "--preview", help=N_("Count and show; create nothing.")),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Open a ticket for every contact matching the filters (at most 1,000), in one go."""
    admin = proven_admin(as_user)
    spec = campaign_ops.CampaignSpec(
        name=name,
        filters=contact_ops.parse_filters(filters),
        subject=subject,
        description=description,
        team=team,
        status=status,
        assignee=assignee,
    )
    engine = desk_engine()
    if preview:
        with read_session(engine) as session:
            plan = campaign_ops.plan_campaign(session, spec)
            rows = [(c.name, c.email, c.phone) for c in plan.first]
        console.print(
            _(
                "Campaign {name} would create {n} ticket(s) for team {team}, tagged {tag!r}: "
                "{subject}"
            ).format(
                name=plan.spec.name,
                n=plan.count,
                team=plan.spec.team,
                tag=plan.spec.name,
                subject=plan.spec.subject,
            )
        )
        print_table(
            _("First {n} of {count}").format(n=len(rows), count=plan.count),
            [N_("customer"), N_("email"), N_("phone")],
            rows,
        )
        return
    with unit_of_work(engine) as session:
        campaign, tickets = campaign_ops.send_campaign(
            session, actor=setup_actor(session, admin), spec=spec
        )
        keys = [t.key for t in tickets]
    console.print(
        _(
            "Campaign {name} created {n} ticket(s) ({first} to {last}), tagged {tag!r}; "
            "saved view {view!r}."
        ).format(
            name=campaign.name,
            n=len(keys),
            first=keys[0],
            last=keys[-1],
            tag=campaign.name,
            view=campaign_ops.view_name(campaign.name),
        )
    )


@campaign_app.command("list")
def campaign_list(as_user: str | None = AS_OPTION) -> None:
    """Every campaign with its ticket count."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        rows = campaign_ops.campaign_rows(session)
    print_table(
        N_("Campaigns"),
        [N_("name"), N_("subject"), N_("team"), N_("status"), N_("tickets"), N_("created")],
        rows,
    )


@responses_app.command("import")
def responses_import(
    file: Path = typer.Argument(
        ..., help=N_("CSV whose columns are the survey's question ids (and optionally ticket).")
    ),
    survey: str = typer.Option(..., "--survey", help=N_("The survey answered, e.g. nps.")),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Import answers as survey responses; their workflows run (NPS 0-6: detractor ticket).

    A ``ticket`` column (a ticket key, e.g. EXP-12) links each answer to that ticket and its
    expert, as the CSAT link does; a ticket answered already is refused for that row.

    Good rows are kept; each bad row is reported by its line and the exit code is then 1.
    """
    proven_admin(as_user)
    csv_file = read_csv(file)
    report = import_responses(desk_engine(), survey_name=survey, csv_file=csv_file)
    console.print(report.line("response"))
    _print_problems(report)
    if report.problems:
        raise typer.Exit(1)


def _number(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.1f}{suffix}"


@report_app.command("csat")
def report_csat(
    by: str | None = typer.Option(None, "--by", help=N_("expert or team.")),
    since: str | None = typer.Option(
        None, "--since", help=N_("YYYY-MM-DD (local day) or 24h, 7d, 2w.")
    ),
    as_json: bool = typer.Option(False, "--json"),
    as_user: str | None = AS_OPTION,
) -> None:
    """CSAT (% of 4-5 of 5, average) and NPS (% promoters - % detractors), with counts."""
    proven(as_user)
    start = reports.parse_since(since) if since else None
    with read_session(desk_engine()) as session:
        rows = reports.csat_report(session, by=by, since=start)
    if as_json:
        print_json([row.to_dict() for row in rows])
        return
    print_table(
        report_title(N_("CSAT and NPS"), by, since),
        [
            by or "",
            N_("CSAT"),
            N_("CSAT answers"),
            N_("avg (1-5)"),
            N_("NPS"),
            N_("NPS answers"),
            N_("promoters"),
            N_("passives"),
            N_("detractors"),
        ],
        [
            (
                row.group,
                _number(row.csat_percent, "%"),
                row.csat_answers,
                _number(row.csat_average),
                _number(row.nps),
                row.nps_answers,
                row.promoters,
                row.passives,
                row.detractors,
            )
            for row in rows
        ],
    )


@survey_app.command("serve")
def survey_serve(
    host: str = typer.Option("127.0.0.1", "--host", help=N_("Address to listen on.")),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
) -> None:
    """Serve the CSAT and NPS surveys as web forms until Ctrl+C.

    CSAT emails link to CXDESK_SURVEY_URL (default http://127.0.0.1:8765): set it to the
    address customers reach this server at.
    """
    # The web server (waitress, Jinja2) loads only when asked.
    from cxdesk.web.server import log_requests_to_stderr, make_survey_server
    from cxdesk.web.settings import ServerSettings

    settings = load_settings()
    limits = ServerSettings.from_desk(settings)
    engine = desk_engine()
    try:
        server = make_survey_server(engine, host, port, limits)
    except OSError as exc:
        raise DeskError(
            _("Cannot listen on {host}:{port}: {reason}").format(
                host=host, port=port, reason=exc.strerror or exc
            )
        ) from None
    except ValueError as exc:
        raise DeskError(
            _("Cannot listen on {host}:{port}: {exc}").format(host=host, port=port, exc=exc)
        ) from None
    console.print(
        _(
            "Surveys served on http://{host}:{port}/ (CSAT links point to {url}/csat); "
            "Ctrl+C stops."
        ).format(host=host, port=port, url=settings.resolved_survey_url)
    )
    console.print(f"Limits: {limits.limits_line()}", highlight=False)
    console.print(limits.twilio_sms_line, highlight=False)
    log_requests_to_stderr()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    app.add_typer(contact_app, name="contact")
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(responses_app, name="responses")
    app.add_typer(report_app, name="report")
    app.add_typer(survey_app, name="survey")
