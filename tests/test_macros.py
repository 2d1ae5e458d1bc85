"""Macros (issue 16, item 7), on SQLite and PostgreSQL: named actions applied to a ticket in one
write, all or nothing, logged under the macro's name; scoped to a team or shared; validated when
saved; in the seed; and through ``cxdesk macro ...`` and ``cxdesk ticket macro KEY NAME``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.macros import (
    Applied,
    MacroProblems,
    apply_macro,
    describe,
    list_macros,
    save_macro,
)
from cxdesk.engine.workflows import save_workflow
from cxdesk.errors import Conflict, DeskError, PermissionDenied
from cxdesk.seed import SeedProblems, apply_seed
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_team, get_user
from cxdesk.store.models import Comment, CommentKind, OutboxMessage, Ticket
from cxdesk.store.ticket_versions import StaleVersion
from cxdesk.store.tickets import TicketDraft
from tests.cli_helpers import Cli, assert_one_error_line, dump_tables
from tests.desk import build_small_desk
from tests.peers import SmtpPeer
from tests.test_delivery import (  # noqa: F401 (mail_env and sms_env are fixtures)
    CUSTOMER,
    EXPERT,
    check_in_and_pull,
    mail_env,
    sms_env,
    ticket_events,
)

WRITTEN = ["ticket", "comment", "event", "outbox", "workflow_run"]
"""The tables applying a macro writes to: unchanged after a refused one."""
EMAIL_KEY, PHONE_KEY, STATS_KEY = "EXP-1", "EXP-2", "EXP-3"
REPLY = "Hi ${tck://Field/customerName}, we need a screenshot of ${tck://Field/key}."
WAITING: list[dict[str, Any]] = [
    {"type": "set", "status": "Follow up later", "priority": "high"},
    {"type": "note", "body": "Asked ${tck://Field/customerName} for a screenshot"},
    {"type": "reply", "body": REPLY},
]


@pytest.fixture
def desk(engine: Engine) -> Iterator[Engine]:
    """The small desk with tickets EXP-1 (360, email), EXP-2 (360, phone only), EXP-3 (Stats
    iQ, email); the shared macro "Waiting" (``WAITING``) and "Stats: resolve" for Stats iQ."""
    build_small_desk(engine)
    with unit_of_work(engine) as session:
        admin = get_user(session, "admin")
        for title, team, email, phone in (
            ("Filters reset", "360", "zoe@example.com", ""),
            ("Call me", "360", "", "+14155552671"),
            ("Regression", "Stats iQ", "sam@example.com", ""),
        ):
            draft = TicketDraft(title=title, team=team, customer_name="Zoë O'Neil",
                                customer_email=email, customer_phone=phone)  # fmt: skip
            ops.create_ticket(session, actor=admin, draft=draft)
        save_macro(session, actor=None, name="Waiting", actions=WAITING)
        save_macro(session, actor=None, name="Stats: resolve", team="Stats iQ",
                   actions=[{"type": "set", "status": "resolved"}])  # fmt: skip
    yield engine


def apply(
    engine: Engine, key: str, name: str, *, as_user: str = "maya", if_version: int | None = None
) -> Applied:
    with unit_of_work(engine) as session:
        return apply_macro(session, actor=get_user(session, as_user), key=key, name=name,
                           if_version=if_version)  # fmt: skip


def omar_resolves(engine: Engine, key: str) -> int:
    """Another expert's save (as from another terminal); the version the ticket was at before."""
    with unit_of_work(engine) as session:
        ticket = ops.update_ticket(session, actor=get_user(session, "omar"), key=key,
                                   comment="Fixed it", changes={"status": "resolved"})  # fmt: skip
        return ticket.version - 1


STALE = ("Omar changed status to resolved", "; reload and try again")


# -- applying ----------------------------------------------------------------------------------


def test_a_macro_sets_fields_notes_and_replies_in_one_write_logged_under_its_name(
    desk: Engine,
) -> None:
    before = len(ticket_events(desk, EMAIL_KEY))
    done = apply(desk, EMAIL_KEY, "Waiting")

    assert (done.key, done.status, done.replied_by) == (EMAIL_KEY, "Follow up later", "email")
    with read_session(desk) as session:
        ticket = ops.get_ticket(session, EMAIL_KEY)
        assert (ticket.status, ticket.priority) == ("Follow up later", "high")
        comments = session.exec(
            select(Comment).where(Comment.ticket_id == ticket.id).order_by(col(Comment.id))
        ).all()
        [outbox] = session.exec(select(OutboxMessage)).all()
    assert [(c.kind, c.body) for c in comments] == [
        (CommentKind.note, "Asked Zoë O'Neil for a screenshot"),
        (CommentKind.reply, "Hi Zoë O'Neil, we need a screenshot of EXP-1."),
    ]
    assert (outbox.channel, outbox.to_addr, outbox.comment_id) == (
        "email",
        "Zoë O'Neil <zoe@example.com>",
        comments[1].id,
    )
    written = ticket_events(desk, EMAIL_KEY)[before:]
    mine = [e for e in written if e.actor_id is not None]
    assert [e.kind for e in mine] == [
        "ticket.updated",
        "ticket.status_changed",
        "ticket.commented",
        "ticket.replied",
    ]
    assert all(str(e.detail).startswith("macro Waiting") for e in mine)
    assert mine[-1].detail == f"macro Waiting; outbox #{outbox.id}"
    assert done.events == len(mine)


def test_a_macro_without_a_note_comments_its_name(desk: Engine) -> None:
    apply(desk, STATS_KEY, "Stats: resolve", as_user="kenji")
    with read_session(desk) as session:
        ticket = ops.get_ticket(session, STATS_KEY)
        assert ticket.status == "resolved" and ticket.resolved_at is not None
        [note] = ops.ticket_comments(session, ticket)
    assert note.body == "Macro Stats: resolve"


def test_a_macro_whose_reply_is_refused_changes_nothing(desk: Engine) -> None:
    """EXP-2 has no customer email: the reply by email is refused, so neither the status, the
    priority nor the note is written."""
    with transaction(desk) as session:
        actions = [*WAITING[:2], {"type": "reply", "body": REPLY, "channel": "email"}]
        save_macro(session, actor=None, name="Waiting by email", actions=actions)
    before = dump_tables(desk, WRITTEN)
    with pytest.raises(DeskError, match="EXP-2 has no customer email"):
        apply(desk, PHONE_KEY, "Waiting by email")
    assert dump_tables(desk, WRITTEN) == before


def test_the_macros_events_run_their_workflows_in_the_same_write(desk: Engine) -> None:
    with transaction(desk) as session:
        save_workflow(session, actor=None, name="Saw a status", event="ticket.status_changed",
                      tasks=[{"type": "comment", "body": "Now ${e://Field/toValue}"}])  # fmt: skip
    apply(desk, EMAIL_KEY, "Waiting")
    with read_session(desk) as session:
        comments = ops.ticket_comments(session, ops.get_ticket(session, EMAIL_KEY))
    assert "Now Follow up later" in [c.body for c in comments]


def test_a_team_macro_is_offered_and_applied_only_on_that_teams_tickets(desk: Engine) -> None:
    with read_session(desk) as session:
        stats, team_360 = get_team(session, "Stats iQ"), get_team(session, "360")
        assert [m.name for m in list_macros(session, team_id=stats.id)] == [
            "Stats: resolve",
            "Waiting",
        ]
        assert [m.name for m in list_macros(session, team_id=team_360.id)] == ["Waiting"]
    before = dump_tables(desk, WRITTEN)
    with pytest.raises(PermissionDenied) as refused:
        apply(desk, EMAIL_KEY, "Stats: resolve", as_user="admin")
    assert str(refused.value) == (
        "Macro 'Stats: resolve' is for team Stats iQ; EXP-1 is on team 360"
    )
    assert dump_tables(desk, WRITTEN) == before


@pytest.mark.parametrize(
    ("who", "refusal"),
    [("kenji", "You are not on the team of EXP-1"), ("vera", "A volunteer cannot apply macros")],
)
def test_only_who_may_edit_the_ticket_applies_a_macro(desk: Engine, who: str, refusal: str) -> None:
    before = dump_tables(desk, WRITTEN)
    with pytest.raises(PermissionDenied, match=refusal):
        apply(desk, EMAIL_KEY, "Waiting", as_user=who)
    assert dump_tables(desk, WRITTEN) == before
    assert apply(desk, EMAIL_KEY, "Waiting", as_user="admin").status == "Follow up later"


def test_a_macro_over_a_version_changed_since_is_refused_whole(desk: Engine) -> None:
    read = omar_resolves(desk, EMAIL_KEY)
    before = dump_tables(desk, WRITTEN)
    with pytest.raises(StaleVersion) as refused:
        apply(desk, EMAIL_KEY, "Waiting", if_version=read)
    assert all(part in str(refused.value) for part in STALE), refused.value
    assert dump_tables(desk, WRITTEN) == before  # neither the fields, the note nor the reply
    done = apply(desk, EMAIL_KEY, "Waiting", if_version=refused.value.current)
    assert (done.status, done.replied_by) == ("Follow up later", "email")


def test_a_macro_that_only_adds_to_the_conversation_takes_no_version(desk: Engine) -> None:
    """As with ``update_ticket``: a note or a reply never contradicts a change."""
    with transaction(desk) as session:
        save_macro(session, actor=None, name="Ask", actions=WAITING[1:])
    read = omar_resolves(desk, EMAIL_KEY)
    done = apply(desk, EMAIL_KEY, "Ask", if_version=read)
    assert (done.status, done.replied_by) == ("resolved", "email")


# -- saving ------------------------------------------------------------------------------------


def test_every_problem_of_a_macro_is_listed_when_it_is_saved(desk: Engine) -> None:
    actions = [
        {"type": "set", "status": "Waiting forever", "priority": "urgent", "owner": "kenji"},
        {"type": "note", "body": "  "},
        {"type": "reply", "body": "Hi ${tck://Field/nickname} ${q:/x}", "channel": "fax"},
        {"type": "note", "body": "again", "colour": "red"},
    ]
    with transaction(desk) as session, pytest.raises(MacroProblems) as refused:
        save_macro(session, actor=None, name="Broken", team="360", actions=actions)
    assert refused.value.problems == [
        "action 1: priority must be one of low, medium, high, critical",
        "action 1: No status named 'Waiting forever' (known: new, open, escalated, resolved, "
        "closed, Follow up later)",
        "action 1: owner kenji is not on team 360",
        "action 2: a note needs a body",
        "action 3: body: unknown ticket field in ${tck://Field/nickname}",
        "action 3: body: unknown placeholder ${q:/x}",
        "action 3: channel must be one of email, sms",
        "action 4: unknown key 'colour'",
        "action 4: a second note (one of each type at most)",
    ]
    for bad, problem in (
        ([], "actions must be a non-empty list"),
        ([{"type": "escalate"}], "action 1: unknown type 'escalate' (known: set, note, reply)"),
        ([{"type": "set"}], "action 1: a set needs at least one of status, priority, team"),
        ([{"type": "note", "body": 3}], "action 1: body must be text"),
    ):
        with transaction(desk) as session, pytest.raises(MacroProblems) as refused:
            save_macro(session, actor=None, name="Broken", actions=bad)  # type: ignore[arg-type]
        assert refused.value.problems[0].startswith(problem)
    with read_session(desk) as session:
        assert [m.name for m in list_macros(session)] == ["Stats: resolve", "Waiting"]


def test_only_admins_add_macros_and_a_name_is_added_once(desk: Engine) -> None:
    note = [{"type": "note", "body": "Seen"}]
    with transaction(desk) as session, pytest.raises(PermissionDenied):
        save_macro(session, actor=get_user(session, "maya"), name="Mine", actions=note)
    with transaction(desk) as session, pytest.raises(Conflict, match="already exists"):
        save_macro(session, actor=get_user(session, "admin"), name="Waiting", actions=note)
    with transaction(desk) as session:
        save_macro(session, actor=get_user(session, "admin"), name="Waiting", actions=note,
                   team="360", replace=True)  # fmt: skip
    with read_session(desk) as session:
        [waiting] = [m for m in list_macros(session) if m.name == "Waiting"]
        assert describe(waiting) == "note: Seen"
        assert waiting.team_id == get_team(session, "360").id


# -- the seed ----------------------------------------------------------------------------------

SEED = """
[[macros]]
name = "Resolved at the desk"
actions = [
  { type = "set", status = "resolved" },
  { type = "reply", body = "Hi ${tck://Field/customerName}, done (${tck://Field/key})." },
]

[[macros]]
name = "360: follow up"
team = "360"
actions = [{ type = "set", status = "Follow up later" }]
"""


def seed(engine: Engine, text: str) -> dict[str, int]:
    import tomllib

    with unit_of_work(engine) as session:
        return dict(apply_seed(session, tomllib.loads(text), text).created)


def test_the_seeds_macros_are_created_once_and_kept_in_line(desk: Engine) -> None:
    assert seed(desk, SEED) == {"macros": 2}
    before = dump_tables(desk, ["macro"])
    assert seed(desk, SEED) == {}
    assert dump_tables(desk, ["macro"]) == before
    assert seed(desk, SEED.replace('team = "360"', 'team = "Stats iQ"')) == {}
    with read_session(desk) as session:
        macros = {m.name: m for m in list_macros(session)}
        assert macros["360: follow up"].team_id == get_team(session, "Stats iQ").id


def test_a_seed_with_a_bad_macro_applies_nothing(desk: Engine) -> None:
    before = dump_tables(desk, ["macro"])
    bad = SEED.replace("${tck://Field/key}", "${tck://Field/ticketKey}")
    with pytest.raises(SeedProblems) as refused:
        seed(desk, bad)
    assert refused.value.problems == [
        "line 2: macros[1] (Resolved at the desk): action 2: body: unknown ticket field in "
        "${tck://Field/ticketKey}"
    ]
    assert dump_tables(desk, ["macro"]) == before


# -- the CLI -----------------------------------------------------------------------------------


def ok(result: Any) -> str:
    assert result.exit_code == 0, str(result)
    return str(result.stdout)


def test_macros_from_the_command_line(
    desk: Engine, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Hi ${tck://Field/customerName}, on its way"))
    line = ok(cli("macro", "add", "Chase", "--team", "360", "--set", "priority=high",
                  "--note", "Chased", "--reply", "-", "--channel", "email"))  # fmt: skip
    assert line.strip() == (
        "Macro Chase saved: Priority -> High; note: Chased; "
        "reply by email: Hi ${tck://Field/customerName}, on its way"
    )
    toml_file = tmp_path / "resolve.toml"
    toml_file.write_text('[[actions]]\ntype = "set"\nstatus = "resolved"\n')
    ok(cli("macro", "add", "Done", "--from", str(toml_file)))
    json_file = tmp_path / "note.json"
    json_file.write_text(json.dumps([{"type": "note", "body": "Seen by ${tck://Field/team}"}]))
    ok(cli("macro", "add", "Seen", "--from", str(json_file)))

    listed = json.loads(ok(cli("macro", "list", "--team", "360", "--json")))
    assert [(m["name"], m["team"]) for m in listed] == [
        ("Chase", "360"),
        ("Done", None),
        ("Seen", None),
        ("Waiting", None),
    ]
    shown = json.loads(ok(cli("macro", "show", "Chase")))
    assert shown["actions"][2] == {
        "type": "reply",
        "body": "Hi ${tck://Field/customerName}, on its way",
        "channel": "email",
    }
    assert shown["created_by"] == "admin"

    said = ok(cli("ticket", "macro", "exp-1", "Chase", "--as", "maya"))
    assert said.strip() == "EXP-1: macro Chase applied (new; reply queued by email)."
    log = json.loads(ok(cli("ticket", "show", EMAIL_KEY, "--json", "--as", "maya")))["log"]
    assert ("ticket.replied", "macro Chase; outbox #1") in [(e["kind"], e["detail"]) for e in log]
    ok(cli("macro", "delete", "Seen"))
    assert "Seen" not in ok(cli("macro", "list"))


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("ticket", "macro", EMAIL_KEY, "Nope", "--as", "maya"), ("No macro named 'Nope'",)),
        (("ticket", "macro", EMAIL_KEY, "Stats: resolve"), ("is for team Stats iQ", "team 360")),
        (("ticket", "macro", EMAIL_KEY, "Waiting", "--as", "kenji"), ("not on the team",)),
        (("macro", "add", "X", "--note", "Hi ${tck://Field/nick}"), ("unknown ticket field",)),
        (("macro", "add", "X", "--set", "status"), ("--set takes FIELD=VALUE",)),
        (("macro", "add", "X"), ("A macro needs actions",)),
        (("macro", "add", "X", "--channel", "sms", "--note", "n"), ("--channel goes with",)),
        (("macro", "add", "X", "--note", "n", "--as", "maya"), ("Only an admin",)),
        (("macro", "add", "Waiting", "--note", "n"), ("already exists",)),
        (("macro", "add", "X", "--team", "Nowhere", "--note", "n"), ("Nowhere",)),
        (("macro", "delete", "Nope"), ("No macro named 'Nope'",)),
        (("macro", "show", "Nope"), ("No macro named 'Nope'",)),
        (("ticket", "macro", EMAIL_KEY, "Waiting", "--if-version", "9"), ("has no version 9",)),
    ],
)
def test_cli_mistakes_are_one_line_and_change_nothing(
    desk: Engine, cli: Cli, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    before = dump_tables(desk, [*WRITTEN, "macro"])
    assert_one_error_line(cli(*args), *fragments)
    assert dump_tables(desk, [*WRITTEN, "macro"]) == before


def test_a_macro_with_several_problems_lists_them_a_line_each(desk: Engine, cli: Cli) -> None:
    before = dump_tables(desk, ["macro"])
    result = cli("macro", "add", "X", "--set", "status=Gone", "--set", "priority=now")
    assert (result.exit_code, result.stdout) == (1, ""), str(result)
    assert result.error_lines == [
        "Error: Macro 'X': 2 problems, nothing saved:",
        "  action 1: priority must be one of low, medium, high, critical",
        "  action 1: No status named 'Gone' (known: new, open, escalated, resolved, closed, "
        "Follow up later)",
    ]
    assert dump_tables(desk, ["macro"]) == before


def test_a_refused_reply_from_the_cli_is_one_line_and_changes_nothing(
    desk: Engine, cli: Cli
) -> None:
    ok(cli("macro", "add", "Mail them", "--set", "status=resolved", "--reply", "Done",
           "--channel", "email"))  # fmt: skip
    before = dump_tables(desk, WRITTEN)
    assert_one_error_line(
        cli("ticket", "macro", PHONE_KEY, "Mail them", "--as", "maya"), "no customer email"
    )
    assert dump_tables(desk, WRITTEN) == before
    with read_session(desk) as session:
        assert session.exec(select(Ticket.status).where(Ticket.key == PHONE_KEY)).one() == "new"


def test_ticket_macro_if_version_refuses_a_stale_one_in_one_line(desk: Engine, cli: Cli) -> None:
    read = json.loads(ok(cli("ticket", "show", EMAIL_KEY, "--json")))["version"]
    omar_resolves(desk, EMAIL_KEY)
    before = dump_tables(desk, WRITTEN)
    stale = cli("ticket", "macro", EMAIL_KEY, "Waiting", "--as", "maya", "--if-version", str(read))
    assert_one_error_line(stale, *STALE)
    assert dump_tables(desk, WRITTEN) == before
    said = ok(cli("ticket", "macro", EMAIL_KEY, "Waiting", "--as", "maya",
                  "--if-version", str(read + 1)))  # fmt: skip
    assert said.startswith("EXP-1: macro Waiting applied (Follow up later")


def test_bad_macro_files_are_one_line(desk: Engine, cli: Cli, tmp_path: Path) -> None:
    cases = {
        "bad.toml": ("type = [", "not a macro file"),
        "bad.json": ("{", "not a macro file"),
        "empty.toml": ('name = "x"\n', "no actions"),
    }
    for name, (content, fragment) in cases.items():
        (tmp_path / name).write_text(content)
        assert_one_error_line(cli("macro", "add", "X", "--from", str(tmp_path / name)), fragment)
    assert_one_error_line(
        cli("macro", "add", "X", "--from", str(tmp_path / "bad.toml"), "--note", "n"),
        "either with --from",
    )
    assert_one_error_line(cli("macro", "add", "X", "--from", str(tmp_path)), "folder")


def test_the_demo_desk_resolves_at_the_desk_with_its_macro(cli: Cli, engine: Engine) -> None:
    ok(cli("demo"))
    shared = json.loads(ok(cli("macro", "list", "--json")))
    assert {"Waiting on customer", "Resolved at the desk"} <= {m["name"] for m in shared}
    answers = ("first_name=Zoe", "last_name=Li", "email=zoe@example.com", "product=360")
    checked_in = ok(cli("checkin", *(f"--answer={answer}" for answer in answers)))
    key = checked_in.strip()
    said = ok(cli("ticket", "macro", key, "Resolved at the desk", "--as", "maya")).strip()
    assert said == f"{key}: macro Resolved at the desk applied (resolved; reply queued by email)."
    shown = json.loads(ok(cli("ticket", "show", key, "--json", "--as", "maya")))
    replies = [c for c in shown["conversation"] if c.get("kind") == "reply"]
    assert replies and "Hi Zoe Li" in replies[-1]["body"]


@pytest.mark.slow
def test_the_demo_macros_reply_reaches_the_customers_mailbox(
    cli: Cli,
    engine: Engine,
    mail_env: SmtpPeer,  # noqa: F811
    sms_env: str,  # noqa: F811
) -> None:
    """Through the real SMTP peer (aiosmtpd) and the Twilio contract mock: the worker sends the
    reply "Waiting on customer" queued, piped with the customer's name and the ticket's key."""
    ok(cli("demo"))
    key = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", EXPERT)
    said = ok(cli("ticket", "macro", key, "Waiting on customer", "--as", EXPERT)).strip()
    assert said.endswith("applied (Waiting on customer; reply queued by email).")
    shown = json.loads(ok(cli("ticket", "show", key, "--json", "--as", EXPERT)))
    assert shown["sla"]["state"] == "paused"  # a paused status: the clocks stand still
    assert "failed 0" in ok(cli("worker", "--once"))
    [sent] = [m.message for m in mail_env.received if f"[{key}]" in str(m.message["Subject"])]
    body = sent.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Hi Zoë & Ann O'Neil," in text and f"with your question ({key})" in text
    assert sent["To"].addresses[0].addr_spec == CUSTOMER["email"]
