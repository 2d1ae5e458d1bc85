"""The admin CLI as users and scripts see it (issue 2, item 5), on SQLite and PostgreSQL.

Every command runs through ``cxdesk.cli.main.main()`` in this process (see
``tests/cli_helpers.py``); a few run as the installed ``cxdesk`` script. Each test checks what
was printed, the exit code, and what the database holds afterwards. A user mistake must give
exit 1, one ``Error: ...`` line, no traceback, and leave the database as it was.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from cxdesk.cli import common
from cxdesk.store.migrate import current_revision, head_revision
from cxdesk.store.models import (
    Attachment,
    Comment,
    Event,
    Membership,
    Queue,
    Status,
    SurveyResponse,
    Team,
    Ticket,
    TicketData,
    User,
    Workflow,
)
from cxdesk.store.passwords import verify_password
from tests.cli_helpers import (
    Cli,
    assert_one_error_line,
    dump_tables,
    run_console_script,
    table_counts,
)

SEED_FILE = Path(__file__).resolve().parent.parent / "cxdesk" / "seeds" / "ask_the_experts.toml"
DEMO_TEAMS = [
    "360",
    "Stats iQ",
    "Employee Engagement",
    "XM Directory",
    "CX Dashboards",
    "API",
    "Extensions",
    "Website/App Feedback",
    "Survey Projects",
]
DEMO_EXPERTS = ["ines", "kenji", "lena", "marco", "maya", "omar"]
SEEDED_TABLES = [
    "user",
    "team",
    "membership",
    "queue",
    "status",
    "survey",
    "workflow",
    "ticket_template",
    "escalation_rule",
    "desk_setting",
    "sla_calendar",
    "sla_policy",
]
TICKET_TABLES = ["ticket", "ticket_data", "comment", "attachment", "event", "survey_response"]
KEY = re.compile(r"^EXP-\d+$")
DATA_NAMES = ["Firstname", "Lastname", "Email", "Phone", "Username", "Product"]
ADA = [
    "--answer", "first_name=Ada",
    "--answer", "last_name=Lovelace",
    "--answer", "email=ada@example.com",
    "--answer", "phone=1-415-555-2671",
    "--answer", "username=ada.lovelace",
    "--answer", "product=Stats iQ",
    "--answer", "notes=Needs to leave by 3pm; regression output differs",
]  # fmt: skip


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def demo_desk(cli: Cli) -> None:
    """The Ask the Experts demo desk, built with ``cxdesk demo``."""
    result = cli("demo")
    assert result.exit_code == 0, str(result)


@pytest.fixture
def fresh_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of ``db_url``'s kind that was never migrated (no tables at all)."""
    if make_url(db_url).get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'never-migrated.db'}"
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    name = f"cxdesk_cli_fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ticket_row(engine: Engine, key: str) -> Ticket:
    with Session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        session.expunge(ticket)
        return ticket


def ticket_data_rows(engine: Engine, key: str) -> list[tuple[str, str]]:
    with Session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        rows = session.exec(
            select(TicketData)
            .where(TicketData.ticket_id == ticket.id)
            .order_by(col(TicketData.position))
        ).all()
        return [(row.name, row.value) for row in rows]


def team_name_of(engine: Engine, key: str) -> str:
    with Session(engine) as session:
        team = session.exec(
            select(Team).join(Ticket, col(Ticket.team_id) == col(Team.id)).where(Ticket.key == key)
        ).one()
        return team.name


def owner_of(engine: Engine, key: str) -> str | None:
    ticket = ticket_row(engine, key)
    if ticket.owner_id is None:
        return None
    with Session(engine) as session:
        user = session.get(User, ticket.owner_id)
        assert user is not None
        return user.username


def waiting_keys(engine: Engine, team: str) -> list[str]:
    """Unowned tickets of a team, oldest first: the order a pull must follow."""
    with Session(engine) as session:
        rows = session.exec(
            select(Ticket.key)
            .join(Team, col(Team.id) == col(Ticket.team_id))
            .where(Team.name == team, col(Ticket.owner_id).is_(None))
            .order_by(col(Ticket.created_at), col(Ticket.id))
        ).all()
        return [key for key in rows if key]


def pulled(cli: Cli, queue: str, username: str) -> str:
    result = cli("ticket", "pull", queue, "--as", username)
    assert result.exit_code == 0, str(result)
    return result.stdout.strip()


# -- demo, seed, init --------------------------------------------------------------------------


def test_demo_builds_the_ask_the_experts_desk_and_prints_the_logins(
    cli: Cli, engine: Engine
) -> None:
    result = cli("demo")

    assert result.exit_code == 0, str(result)
    assert "Traceback" not in result.output
    for username in ["admin", "vera", *DEMO_EXPERTS]:
        login = re.search(rf"^\W*{username}\W.*\Wdemo\W*$", result.stdout, re.MULTILINE)
        assert login, f"login {username} (password demo) not printed:\n{result.stdout}"
    with Session(engine) as session:
        teams = {t.name: t.id for t in session.exec(select(Team)).all()}
        assert sorted(teams) == sorted(DEMO_TEAMS)
        queues = {q.name: q.team_id for q in session.exec(select(Queue)).all()}
        assert queues == teams  # a queue per team, named like the team
        users = {u.username: u for u in session.exec(select(User)).all()}
        assert users["admin"].role == "admin"
        assert users["vera"].role == "volunteer"
        for expert in DEMO_EXPERTS:
            assert users[expert].role == "expert"
            memberships = session.exec(
                select(Membership).where(Membership.user_id == users[expert].id)
            ).all()
            assert 4 <= len(memberships) <= 5, expert
        tickets = session.exec(select(Ticket)).all()
        assert len(tickets) == 10
        assert all(t.owner_id is None and t.status == "new" for t in tickets)
        assert all(KEY.match(t.key or "") for t in tickets)

    # No command opens the desk, which needs a terminal: piped, it says so in one line
    # (tests/test_tui.py drives the desk itself).
    opened = cli()
    assert opened.exit_code != 0
    assert "needs a terminal" in opened.output
    assert "Traceback" not in opened.output


def test_demo_again_keeps_the_desk_and_reset_starts_over(cli: Cli, engine: Engine) -> None:
    assert cli("demo").exit_code == 0
    assert cli("team", "add", "Extra").exit_code == 0
    checkin = cli("checkin", "--as", "vera", *ADA)
    assert checkin.exit_code == 0, str(checkin)
    assert table_counts(engine)["ticket"] == 11

    again = cli("demo")
    assert again.exit_code == 0, str(again)
    assert "kept" in again.stdout
    assert "maya" not in again.stdout  # an existing desk's users are not shown to anyone
    counts = table_counts(engine)
    assert (counts["ticket"], counts["team"]) == (11, 10)

    reset = cli("demo", "--reset")
    assert reset.exit_code == 0, str(reset)
    assert "Traceback" not in reset.output
    counts = table_counts(engine)
    assert (counts["ticket"], counts["team"], counts["user"]) == (10, 9, 8)
    assert current_revision(engine) == head_revision()


def test_seed_twice_changes_nothing_the_second_time(cli: Cli, engine: Engine) -> None:
    first = cli("seed", str(SEED_FILE))
    assert first.exit_code == 0, str(first)
    assert "9 teams" in first.stdout and "8 users" in first.stdout
    before = dump_tables(engine, SEEDED_TABLES)
    assert len(before["team"]) == 9 and len(before["workflow"]) == 19  # 9 check-ins, 10 more

    second = cli("seed", str(SEED_FILE))

    assert second.exit_code == 0, str(second)
    assert second.stdout.strip() == "Seed applied: nothing to change."
    assert dump_tables(engine, SEEDED_TABLES) == before


BAD_SEED = """\
[[teams]]
name = "Alpha"

[[teams]]
name = "Alpha"

[[users]]
username = "bob"
name = 42
email = "bob@example.com"
role = "expert"

[[queues]]
name = "Ghosts"
team = "Ghost"
"""


def test_bad_seed_lists_every_problem_with_its_line_and_applies_nothing(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    seed_file = tmp_path / "bad.toml"
    seed_file.write_text(BAD_SEED, encoding="utf-8")
    before = table_counts(engine)

    result = cli("seed", str(seed_file))

    assert result.exit_code == 1, str(result)
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: ")
    assert "nothing applied" in result.stderr
    problems = result.stderr.splitlines()
    expected = [
        ("line 4", "duplicate name 'Alpha'"),  # the second [[teams]]
        ("line 7", "name must be a str"),  # [[users]] bob
        ("line 13", "'Ghost'"),  # [[queues]] names a team that does not exist
    ]
    for line, fragment in expected:
        assert any(line in p and fragment in p for p in problems), (
            f"no problem '{line} ... {fragment}' in:\n{result.stderr}"
        )
    assert table_counts(engine) == before


def test_init_sets_up_a_never_migrated_database(
    cli: Cli, fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXDESK_DATABASE_URL", fresh_url)
    try:
        before = cli("user", "list")
        assert_one_error_line(before, "cxdesk init")

        init = cli("init")
        assert init.exit_code == 0, str(init)
        assert "Desk ready" in init.stdout
        engine = common.engine_for(fresh_url)
        assert current_revision(engine) == head_revision()
        with Session(engine) as session:
            statuses = {s.name: s.category for s in session.exec(select(Status)).all()}
        assert statuses == {
            "new": "open",
            "open": "open",
            "escalated": "open",
            "resolved": "resolved",
            "closed": "resolved",
        }

        upgrade = cli("db", "upgrade")
        assert upgrade.exit_code == 0, str(upgrade)
        assert "already at revision" in upgrade.stdout
        assert cli("init").exit_code == 0  # running it again is harmless
        assert len(dump_tables(engine, ["status"])["status"]) == 5
    finally:
        common.engine_for(fresh_url).dispose()


def test_db_upgrade_on_a_migrated_database_reports_it_is_at_head(cli: Cli) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, str(result)
    assert result.stdout.strip() == f"Database already at revision {head_revision()}."


# -- users, teams, queues, statuses ------------------------------------------------------------


@pytest.mark.usefixtures("first_admin")
def test_user_add_hashes_the_password_and_joins_teams(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXDESK_PASSWORD", "s3cret-Pw")
    assert cli("team", "add", "360").exit_code == 0
    assert cli("team", "add", "API").exit_code == 0

    result = cli(
        "user", "add", "maya", "--name", "Maya Chen", "--email", "maya@example.com",
        "--phone", "1-415-555-2671", "--role", "expert", "--team", "360", "--team", "API",
    )  # fmt: skip

    assert result.exit_code == 0, str(result)
    assert "maya" in result.stdout
    with Session(engine) as session:
        user = session.exec(select(User).where(User.username == "maya")).one()
        assert (user.name, user.email, user.role, user.phone) == (
            "Maya Chen",
            "maya@example.com",
            "expert",
            "+14155552671",
        )
        assert user.password_hash.startswith("$argon2")
        assert verify_password(user.password_hash, "s3cret-Pw")
        assert len(session.exec(select(Membership)).all()) == 2
    listing = cli("user", "list")
    assert listing.exit_code == 0, str(listing)
    assert "maya" in listing.stdout and "expert" in listing.stdout
    assert "360, API" in listing.stdout
    teams = cli("team", "list")
    assert teams.exit_code == 0 and "maya" in teams.stdout


@pytest.mark.usefixtures("first_admin")
def test_user_add_mistakes_are_one_error_line_and_save_nothing(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXDESK_PASSWORD", "pw")
    add = ("user", "add")
    first = cli(*add, "omar", "--name", "Omar", "--email", "o@example.com", "--role", "expert")
    assert first.exit_code == 0, str(first)
    before = dump_tables(engine, ["user", "membership"])

    duplicate = cli(*add, "omar", "--name", "Omar", "--email", "o@example.com", "--role", "admin")
    assert_one_error_line(duplicate, "omar", "already exists")
    bad = cli(*add, "yan", "--name", "Yan", "--email", "not-an-email", "--role", "boss")
    assert_one_error_line(bad, "email", "role")
    no_team = cli(*add, "zoe", "--name", "Zoe", "--email", "z@example.com", "--role", "expert",
                  "--team", "Nowhere")  # fmt: skip
    assert_one_error_line(no_team, "Nowhere")
    bad_phone = cli(*add, "pat", "--name", "Pat", "--email", "p@example.com", "--role", "expert",
                    "--phone", "12")  # fmt: skip
    assert_one_error_line(bad_phone, "phone")

    assert dump_tables(engine, ["user", "membership"]) == before


@pytest.mark.usefixtures("first_admin")
def test_team_queue_and_status_commands(cli: Cli, engine: Engine) -> None:
    assert cli("team", "add", "Stats iQ").exit_code == 0
    added = cli("queue", "add", "Stats iQ urgent", "--team", "Stats iQ", "--order", "priority")
    assert added.exit_code == 0, str(added)
    status = cli("status", "add", "Follow up later", "--category", "open")
    assert status.exit_code == 0, str(status)
    with Session(engine) as session:
        queue = session.exec(select(Queue)).one()
        team = session.exec(select(Team)).one()
        assert (queue.name, queue.team_id, queue.ordering) == (
            "Stats iQ urgent",
            team.id,
            "priority",
        )
        custom = session.exec(select(Status).where(Status.name == "Follow up later")).one()
        assert (custom.category, custom.builtin) == ("open", False)

    assert "Stats iQ urgent" in cli("queue", "list").stdout
    assert "Stats iQ" in cli("team", "list").stdout
    listing = cli("status", "list")
    assert listing.exit_code == 0 and "Follow up later" in listing.stdout

    before = table_counts(engine)
    assert_one_error_line(cli("team", "add", "Stats iQ"), "already exists")
    assert_one_error_line(cli("queue", "add", "Q", "--team", "Nowhere"), "Nowhere")
    assert_one_error_line(cli("queue", "add", "Q", "--team", "Stats iQ", "--order", "random"),
                          "order")  # fmt: skip
    assert_one_error_line(cli("status", "add", "Parked", "--category", "maybe"), "category")
    assert_one_error_line(cli("status", "add", "Follow up later", "--category", "open"),
                          "already exists")  # fmt: skip
    assert table_counts(engine) == before


# -- check-in ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("demo_desk")
def test_checkin_prints_the_key_and_routes_to_the_product_team(cli: Cli, engine: Engine) -> None:
    result = cli("checkin", "--as", "vera", *ADA)

    assert result.exit_code == 0, str(result)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and KEY.match(lines[0]), str(result)
    key = lines[0]
    ticket = ticket_row(engine, key)
    assert team_name_of(engine, key) == "Stats iQ"
    assert (ticket.owner_id, ticket.status, ticket.source) == (None, "new", "checkin")
    assert ticket.customer_name == "Ada Lovelace"
    assert ticket.customer_email == "ada@example.com"
    assert ticket.customer_phone == "+14155552671"
    assert ticket.customer_comment == "Needs to leave by 3pm; regression output differs"
    assert ticket_data_rows(engine, key) == [
        ("Firstname", "Ada"),
        ("Lastname", "Lovelace"),
        ("Email", "ada@example.com"),
        ("Phone", "+14155552671"),
        ("Username", "ada.lovelace"),
        ("Product", "Stats iQ"),
    ]
    with Session(engine) as session:
        response = session.get(SurveyResponse, ticket.response_id)
        assert response is not None and response.answers["phone"] == "+14155552671"
    # It waits in the Stats iQ queue behind the demo's Stats iQ check-in.
    assert waiting_keys(engine, "Stats iQ")[-1] == key
    queues = cli("queue", "list").stdout
    assert re.search(r"Stats iQ\W+Stats iQ\W+oldest\W+2\W", queues), queues
    pulled(cli, "Stats iQ", "kenji")
    assert pulled(cli, "Stats iQ", "kenji") == key


@pytest.mark.usefixtures("demo_desk")
def test_checkin_with_bad_answers_names_each_field_and_writes_nothing(
    cli: Cli, engine: Engine
) -> None:
    before = dump_tables(engine, TICKET_TABLES)

    bad = cli(
        "checkin", "--as", "vera",
        "--answer", "first_name=Ada", "--answer", "last_name=Lovelace",
        "--answer", "email=ada-at-example", "--answer", "phone=555-12",
        "--answer", "product=Excel",
    )  # fmt: skip
    assert_one_error_line(bad, "email", "phone", "product")
    missing = cli("checkin", "--as", "vera", "--answer", "email=ada@example.com")
    assert_one_error_line(missing, "first_name", "last_name", "product")
    no_equals = cli("checkin", "--as", "vera", "--answer", "first_name")
    assert_one_error_line(no_equals, "FIELD=VALUE", "first_name")
    unknown = cli("checkin", "--as", "vera", *ADA, "--answer", "shoe_size=42")
    assert_one_error_line(unknown, "shoe_size")
    nobody = cli("checkin", "--as", "ghost", *ADA)
    assert_one_error_line(nobody, "ghost")

    assert dump_tables(engine, TICKET_TABLES) == before


@pytest.mark.usefixtures("demo_desk")
def test_checkin_of_answers_the_survey_accepts_is_stored_on_both_databases(
    cli: Cli, engine: Engine
) -> None:
    """First and last name may each be 200 characters (the survey's limit for text)."""
    first, last = "A" * 200, "B" * 200

    result = cli(
        "checkin", "--as", "vera", "--answer", f"first_name={first}",
        "--answer", f"last_name={last}", "--answer", "email=long@example.com",
        "--answer", "product=API",
    )  # fmt: skip

    assert "Traceback" not in result.output, str(result)
    assert result.exit_code == 0, str(result)
    key = result.stdout.strip()
    assert ticket_data_rows(engine, key)[:2] == [("Firstname", first), ("Lastname", last)]


@pytest.mark.usefixtures("demo_desk")
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ["user", "add", "longname", "--name", "N" * 300, "--email", "l@example.com",
             "--role", "expert"],
            id="user-name",
        ),
        pytest.param(
            ["ticket", "create", "--as", "maya", "--email", "c@example.com", "--team", "360",
             "--comment", "hi", "--name", "N" * 300],
            id="customer-name",
        ),
    ],
)  # fmt: skip
def test_too_long_names_are_refused_in_one_line_or_stored_whole(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("CXDESK_PASSWORD", "pw")
    before = table_counts(engine)

    result = cli(*args)

    assert "Traceback" not in result.output, str(result)
    if result.exit_code == 0:
        with Session(engine) as session:
            names = [u.name for u in session.exec(select(User)).all()]
            names += [t.customer_name for t in session.exec(select(Ticket)).all()]
        assert "N" * 300 in names
    else:
        assert_one_error_line(result, "name")
        assert table_counts(engine) == before


# -- pulling and working tickets ---------------------------------------------------------------


@pytest.mark.usefixtures("demo_desk")
def test_pull_gives_the_oldest_waiting_ticket_then_warns_when_empty(
    cli: Cli, engine: Engine
) -> None:
    waiting = waiting_keys(engine, "360")
    assert len(waiting) == 2

    first = cli("ticket", "pull", "360", "--as", "maya")
    assert first.exit_code == 0, str(first)
    assert first.stdout == f"{waiting[0]}\n"
    assert owner_of(engine, waiting[0]) == "maya"
    assert ticket_row(engine, waiting[0]).status == "open"

    before = dump_tables(engine, TICKET_TABLES)
    outsider = cli("ticket", "pull", "360", "--as", "omar")  # omar is not on team 360
    assert_one_error_line(outsider, "You are not on team 360")
    assert_one_error_line(cli("ticket", "pull", "Nowhere", "--as", "maya"), "Nowhere")
    assert_one_error_line(cli("ticket", "pull", "360", "--as", "ghost"), "ghost")
    assert dump_tables(engine, TICKET_TABLES) == before

    assert pulled(cli, "360", "lena") == waiting[1]
    empty = cli("ticket", "pull", "360", "--as", "maya")
    assert_one_error_line(empty, "No tickets waiting in 360")


@pytest.mark.usefixtures("demo_desk")
def test_update_resolves_with_a_comment_and_logs_the_change(cli: Cli, engine: Engine) -> None:
    key = pulled(cli, "360", "maya")

    result = cli("ticket", "update", key, "--as", "maya", "--status", "resolved",
                 "--priority", "high", "--comment", "Filters fixed")  # fmt: skip

    assert result.exit_code == 0, str(result)
    assert key in result.stdout and "resolved" in result.stdout
    ticket = ticket_row(engine, key)
    assert (ticket.status, ticket.priority) == ("resolved", "high")
    assert ticket.resolved_at is not None
    with Session(engine) as session:
        comments = session.exec(select(Comment).where(Comment.ticket_id == ticket.id)).all()
        assert [c.body for c in comments] == ["Filters fixed"]
        changes = session.exec(
            select(Event)
            .where(Event.ticket_id == ticket.id, Event.field_name == "status")
            .order_by(col(Event.id))
        ).all()
        assert [(e.from_value, e.to_value) for e in changes][-1] == ("open", "resolved")


@pytest.mark.usefixtures("demo_desk")
def test_update_mistakes_change_nothing(cli: Cli, engine: Engine) -> None:
    key = pulled(cli, "360", "maya")
    before = dump_tables(engine, TICKET_TABLES)
    update = ("ticket", "update", key)

    no_comment = cli(*update, "--as", "maya", "--status", "resolved", "--comment", " ")
    assert_one_error_line(no_comment, "comment")
    omitted = cli(*update, "--as", "maya", "--status", "resolved")
    assert "Traceback" not in omitted.output
    assert omitted.exit_code != 0 and "--comment" in omitted.stderr
    not_on_team = cli(*update, "--as", "maya", "--owner", "omar", "--comment", "handing over")
    assert_one_error_line(not_on_team, "omar", "not on team 360")
    unknown = cli(*update, "--as", "maya", "--status", "parked", "--comment", "parking it")
    assert_one_error_line(unknown, "parked")
    priority = cli(*update, "--as", "maya", "--priority", "urgent", "--comment", "hurry")
    assert_one_error_line(priority, "priority")
    volunteer = cli(*update, "--as", "vera", "--status", "resolved", "--comment", "done")
    assert_one_error_line(volunteer, "volunteer cannot edit tickets")
    outsider = cli(*update, "--as", "omar", "--status", "resolved", "--comment", "done")
    assert_one_error_line(outsider, "not on the team")
    missing = cli("ticket", "update", "EXP-999", "--as", "maya", "--comment", "x")
    assert_one_error_line(missing, "EXP-999")

    assert dump_tables(engine, TICKET_TABLES) == before


@pytest.mark.usefixtures("demo_desk")
def test_ticket_show_json_has_the_fields_conversation_and_log(cli: Cli, engine: Engine) -> None:
    key = pulled(cli, "360", "maya")
    assert cli("ticket", "update", key, "--as", "maya", "--status", "resolved",
               "--comment", "Solved at the desk").exit_code == 0  # fmt: skip

    result = cli("ticket", "show", key.lower(), "--json")

    assert result.exit_code == 0, str(result)
    shown = json.loads(result.stdout)
    ticket = ticket_row(engine, key)
    assert shown["key"] == key
    assert shown["title"] == ticket.title
    assert (shown["status"], shown["priority"]) == ("resolved", "medium")
    assert (shown["team"], shown["origin_team"], shown["owner"]) == ("360", "360", "maya")
    assert shown["customer_name"] == ticket.customer_name
    assert shown["customer_email"] == ticket.customer_email
    assert shown["customer_phone"] == ticket.customer_phone == "+14155552671"
    assert list(shown["data"]) == DATA_NAMES  # ordered as on the ticket
    assert list(shown["data"].items()) == ticket_data_rows(engine, key)
    created = datetime.fromisoformat(shown["created_at"])
    assert created.utcoffset() is not None
    assert datetime.fromisoformat(shown["updated_at"]) >= created
    assert [(c["kind"], c["author"], c["body"]) for c in shown["conversation"]] == [
        ("note", "maya", "Solved at the desk")
    ]
    log = [(e["who"], e["kind"], e["from"], e["to"]) for e in shown["log"]]
    assert ("maya", "ticket.assigned_from_queue", None, "maya") in log
    assert ("maya", "ticket.status_changed", "new", "open") in log
    assert ("maya", "ticket.status_changed", "open", "resolved") in log
    assert all({"who", "kind", "from", "to", "at"} <= set(e) for e in shown["log"])

    text = cli("ticket", "show", key)
    assert text.exit_code == 0, str(text)
    assert key in text.stdout and "Solved at the desk" in text.stdout and "Firstname" in text.stdout
    assert_one_error_line(cli("ticket", "show", "EXP-999"), "EXP-999")


@pytest.mark.usefixtures("demo_desk")
def test_tickets_list_filters_by_status_team_and_owner(cli: Cli) -> None:
    first_360 = pulled(cli, "360", "maya")
    second_360 = pulled(cli, "360", "maya")
    api = pulled(cli, "API", "omar")
    assert cli("ticket", "update", first_360, "--as", "maya", "--status", "resolved",
               "--comment", "done").exit_code == 0  # fmt: skip

    def keys(*filters: str) -> set[str]:
        result = cli("tickets", "list", *filters, "--json")
        assert result.exit_code == 0, str(result)
        records = json.loads(result.stdout)
        for record in records:
            assert {"key", "title", "status", "priority", "team", "origin_team", "owner",
                    "customer_name", "customer_email", "customer_phone", "data",
                    "created_at", "updated_at"} <= set(record)  # fmt: skip
        return {r["key"] for r in records}

    everything = keys()
    assert len(everything) == 10
    assert keys("--status", "open") == {second_360, api}
    assert keys("--status", "resolved") == {first_360}
    assert keys("--team", "360") == {first_360, second_360}
    assert keys("--owner", "maya") == {first_360, second_360}
    assert keys("--owner", "maya", "--status", "open") == {second_360}
    assert keys("--owner", "none") == everything - {first_360, second_360, api}
    assert keys("--team", "API", "--status", "new") == set()
    table = cli("tickets", "list", "--team", "360")
    assert table.exit_code == 0 and first_360 in table.stdout and api not in table.stdout

    assert_one_error_line(cli("tickets", "list", "--status", "parked"), "parked")
    assert_one_error_line(cli("tickets", "list", "--team", "Nowhere"), "Nowhere")
    assert_one_error_line(cli("tickets", "list", "--owner", "ghost"), "ghost")


# -- comments and attachments ------------------------------------------------------------------


@pytest.mark.usefixtures("demo_desk")
def test_comment_with_a_text_attachment_is_stored(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    key = pulled(cli, "360", "maya")
    notes = tmp_path / "steps.txt"
    notes.write_bytes(b"1. open the dashboard\n2. share it\n")

    result = cli("ticket", "comment", key, "--as", "maya", "--comment", "Steps attached",
                 "--attach", str(notes))  # fmt: skip

    assert result.exit_code == 0, str(result)
    with Session(engine) as session:
        comment = session.exec(select(Comment).where(Comment.body == "Steps attached")).one()
        attachment = session.exec(select(Attachment)).one()
    assert attachment.comment_id == comment.id
    assert (attachment.filename, attachment.content_type) == ("steps.txt", "text/plain")
    assert (attachment.size, attachment.content) == (len(notes.read_bytes()), notes.read_bytes())


@pytest.mark.usefixtures("demo_desk")
def test_refused_attachments_store_nothing(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    key = pulled(cli, "360", "maya")
    program = tmp_path / "fix.exe"
    program.write_bytes(b"MZ")
    big = tmp_path / "export.csv"
    big.write_bytes(b"a,b\n" * (600 * 1024 // 4))  # 600 KB
    small = []
    for n in range(6):
        path = tmp_path / f"part{n}.txt"
        path.write_text("x")
        small.append(path)
    comment = ("ticket", "comment", key, "--as", "maya", "--comment", "see attached")
    before = table_counts(engine)

    assert_one_error_line(cli(*comment, "--attach", str(program)), "fix.exe", "not allowed")
    too_big = assert_one_error_line(cli(*comment, "--attach", str(big)), "export.csv", "500 KB")
    assert "export.csv: is 500 KB" not in too_big, f"a 600 KB file said to be 500 KB: {too_big}"
    six = [arg for path in small for arg in ("--attach", str(path))]
    assert_one_error_line(cli(*comment, *six), "5")
    missing = cli(*comment, "--attach", str(tmp_path / "nope.txt"))
    assert_one_error_line(missing, "nope.txt")

    counts = table_counts(engine)
    assert (counts["attachment"], counts["comment"]) == (before["attachment"], before["comment"])
    assert counts == before


# -- manual tickets ----------------------------------------------------------------------------


@pytest.mark.usefixtures("demo_desk")
def test_manual_ticket_by_an_expert_and_refused_for_a_volunteer(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("ticket", "create", "--as", "maya", "--email", "Kim@Example.com",
                 "--team", "360", "--comment", "Printer on fire\nsecond line",
                 "--priority", "high")  # fmt: skip

    assert result.exit_code == 0, str(result)
    key = result.stdout.strip()
    assert KEY.match(key), str(result)
    ticket = ticket_row(engine, key)
    assert team_name_of(engine, key) == "360"
    assert (ticket.source, ticket.priority, ticket.status) == ("manual", "high", "new")
    assert ticket.customer_email == "Kim@example.com"
    assert ticket.title == "Printer on fire"
    assert owner_of(engine, key) is None  # 360 has several members: nobody by default

    # A team with exactly one member gives that owner by default.
    monkeypatch.setenv("CXDESK_PASSWORD", "pw")
    assert cli("team", "add", "Solo").exit_code == 0
    assert cli("user", "add", "sol", "--name", "Sol", "--email", "sol@example.com",
               "--role", "expert", "--team", "Solo").exit_code == 0  # fmt: skip
    solo = cli("ticket", "create", "--as", "admin", "--email", "c@example.com", "--team", "Solo",
               "--comment", "Only Sol knows")  # fmt: skip
    assert solo.exit_code == 0, str(solo)
    assert owner_of(engine, solo.stdout.strip()) == "sol"

    before = table_counts(engine)
    volunteer = cli("ticket", "create", "--as", "vera", "--email", "c@example.com",
                    "--team", "360", "--comment", "help")  # fmt: skip
    assert_one_error_line(volunteer, "volunteer cannot create tickets")
    bad_email = cli("ticket", "create", "--as", "maya", "--email", "nope", "--team", "360",
                    "--comment", "help")  # fmt: skip
    assert_one_error_line(bad_email, "customer_email")
    no_team = cli("ticket", "create", "--as", "maya", "--email", "c@example.com",
                  "--team", "Nowhere", "--comment", "help")  # fmt: skip
    assert_one_error_line(no_team, "Nowhere")
    assert table_counts(engine) == before


# -- workflows ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("demo_desk")
def test_workflow_list_show_copy_enable_disable(cli: Cli, engine: Engine) -> None:
    listing = cli("workflow", "list")
    assert listing.exit_code == 0, str(listing)
    for team in DEMO_TEAMS:
        assert f"Check-in: {team}" in listing.stdout
    shown = json.loads(cli("workflow", "show", "Check-in: 360").stdout)
    assert (shown["event"], shown["survey"], shown["enabled"]) == (
        "survey.response",
        "checkin",
        True,
    )
    assert shown["tasks"][0]["team"] == "360"

    assert cli("team", "add", "Qualtrics Edge").exit_code == 0
    copied = cli("workflow", "copy", "Check-in: 360", "Check-in: Edge", "--team", "Qualtrics Edge")
    assert copied.exit_code == 0, str(copied)
    copy = json.loads(cli("workflow", "show", "Check-in: Edge").stdout)
    assert copy["tasks"][0]["team"] == "Qualtrics Edge"
    assert copy["conditions"] == {
        "all": [{"field": "q://product", "op": "is", "value": "Qualtrics Edge"}]
    }

    disabled = cli("workflow", "disable", "Check-in: Stats iQ")
    assert disabled.exit_code == 0, str(disabled)
    with Session(engine) as session:
        workflow = session.exec(select(Workflow).where(Workflow.name == "Check-in: Stats iQ")).one()
        assert workflow.enabled is False
    tickets_before = table_counts(engine)["ticket"]
    ignored = cli("checkin", "--as", "vera", *ADA)  # product Stats iQ: its workflow is off
    assert ignored.exit_code == 0, str(ignored)
    assert ignored.stdout == "" and "no workflow created a ticket" in ignored.stderr
    assert table_counts(engine)["ticket"] == tickets_before

    assert cli("workflow", "enable", "Check-in: Stats iQ").exit_code == 0
    routed = cli("checkin", "--as", "vera", *ADA)
    assert team_name_of(engine, routed.stdout.strip()) == "Stats iQ"

    before = dump_tables(engine, ["workflow"])
    assert_one_error_line(cli("workflow", "copy", "Check-in: 360", "Check-in: API"), "exists")
    assert_one_error_line(cli("workflow", "copy", "Nope", "Copy"), "Nope")
    assert_one_error_line(cli("workflow", "copy", "Check-in: 360", "X", "--team", "Ghost"), "Ghost")
    assert_one_error_line(cli("workflow", "enable", "Nope"), "Nope")
    assert_one_error_line(cli("workflow", "show", "Nope"), "Nope")
    assert dump_tables(engine, ["workflow"]) == before


# -- a desk that cannot be reached -------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("breakage", ["not-a-desk", "unreachable"])
def test_a_broken_database_url_is_one_error_line(
    cli: Cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, breakage: str
) -> None:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        garbage = tmp_path / "not-a-desk.db"
        garbage.write_bytes(b"this is not a database\n" * 100)
        (tmp_path / "a-file").write_text("")
        broken = {
            "not-a-desk": f"sqlite:///{garbage}",
            "unreachable": f"sqlite:///{tmp_path / 'a-file' / 'desk.db'}",  # folder is a file
        }
    else:
        broken = {
            "not-a-desk": url.set(database="no_such_desk").render_as_string(hide_password=False),
            "unreachable": f"postgresql://cxdesk@127.0.0.1:{_closed_port()}/desk",
        }
    monkeypatch.setenv("CXDESK_DATABASE_URL", broken[breakage])
    try:
        assert_one_error_line(cli("user", "list"))
    finally:
        common.engine_for.cache_clear()


# -- what people type is printed as typed ------------------------------------------------------


@pytest.mark.usefixtures("first_admin")
def test_team_names_with_square_brackets_are_printed_as_typed(cli: Cli, engine: Engine) -> None:
    """Rich reads "[...]" as markup: a name must never be styled away or crash a listing."""
    added = cli("team", "add", "R&D [/internal]")
    assert "Traceback" not in added.output, str(added)
    assert added.exit_code == 0 and "R&D [/internal]" in added.stdout, str(added)
    assert cli("team", "add", "Beta [bold]").exit_code == 0
    teams = cli("team", "list")
    assert "Traceback" not in teams.output, str(teams)
    assert "R&D [/internal]" in teams.stdout and "Beta [bold]" in teams.stdout, str(teams)


@pytest.mark.usefixtures("demo_desk")
def test_customer_names_with_square_brackets_are_printed_as_typed(cli: Cli, engine: Engine) -> None:
    """What a customer gives at check-in must not break the ticket list for everyone."""
    checkin = cli("checkin", "--as", "vera", *ADA, "--answer", "last_name=Lovelace [/b]")
    key = checkin.stdout.strip()
    assert ticket_row(engine, key).customer_name == "Ada Lovelace [/b]"
    for args in (("ticket", "show", key), ("tickets", "list")):
        shown = cli(*args)
        assert "Traceback" not in shown.output, str(shown)
        assert shown.exit_code == 0 and "Lovelace [/b]" in shown.stdout, str(shown)


# -- the installed console script --------------------------------------------------------------


@pytest.mark.usefixtures("demo_desk")
def test_console_script_prints_the_key_and_one_error_line(engine: Engine) -> None:
    """The real ``cxdesk`` process: what event staff's scripts read."""
    checkin = run_console_script("checkin", "--as", "vera", *ADA)
    assert checkin.exit_code == 0, str(checkin)
    assert KEY.match(checkin.stdout.strip()) and checkin.stdout.count("\n") == 1, str(checkin)
    assert team_name_of(engine, checkin.stdout.strip()) == "Stats iQ"

    refused = run_console_script("ticket", "pull", "Stats iQ", "--as", "omar")
    assert refused.stderr == "Error: You are not on team Stats iQ\n", str(refused)
    assert (refused.exit_code, refused.stdout) == (1, "")
