"""The workflow engine: piped text, conditions, dispatch exactly once, workflow admin."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, func
from sqlmodel import col, select

from cxdesk.engine.conditions import condition_problems, evaluate
from cxdesk.engine.dispatch import dispatch_backlog, unit_of_work
from cxdesk.engine.piped import PipeContext, render, template_problems
from cxdesk.engine.workflows import copy_workflow, get_workflow, save_workflow, set_enabled
from cxdesk.errors import Conflict, PermissionDenied, ValidationFailed
from cxdesk.store.db import is_sqlite, read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Event, Ticket, WorkflowRun
from cxdesk.store.surveys import submit_response
from tests.desk import build_small_desk

CONTEXT = PipeContext(
    ticket={"ownerName": "Inès Moreau", "ownerEmail": "ines@example.com", "key": "EXP-7"},
    data={"Firstname": "Zoë & Ann", "Lastname": "O'Neil"},
    answers={"email": "zoe@example.com", "evil": "x\r\nBcc: all@example.com"},
)


def test_url_values_are_percent_encoded_and_decode_back() -> None:
    template = (
        "Rate us: https://survey.example.com/form?SupportRep=${tck://Field/ownerName}"
        "&RepEmail=${tck://Field/ownerEmail}&CustomerName=${tck://kv/Firstname}%20"
        "${tck://kv/Lastname} Thanks ${tck://kv/Firstname}!"
    )
    text = render(template, CONTEXT)
    url = text.split()[2]
    params = parse_qs(urlsplit(url).query)
    assert params == {
        "SupportRep": ["Inès Moreau"],
        "RepEmail": ["ines@example.com"],
        "CustomerName": ["Zoë & Ann O'Neil"],
    }
    assert text.endswith("Thanks Zoë & Ann!")  # outside the URL: plain text


def test_values_never_break_headers_or_expand() -> None:
    assert "\n" not in render("Re: ${q://evil}", CONTEXT, header=True)
    assert "\r" not in render("Re: ${q://evil}", CONTEXT, header=True)
    nested = PipeContext(answers={"a": "${q://b}", "b": "secret"})
    assert render("${q://a}", nested) == "${q://b}"
    assert render("${q://missing}", CONTEXT) == ""


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("${tck://Field/nope}", "unknown ticket field"),
        ("${x://y}", "unknown placeholder"),
        ("${q://}", "unknown placeholder"),
        ("${q://first_name", "unknown placeholder"),
        ("${q://colour}", "unknown question"),
    ],
)
def test_bad_placeholders_are_found(template: str, problem: str) -> None:
    problems = template_problems(template, questions=["first_name"])
    assert problems and problem in problems[0]


def test_good_template_has_no_problems() -> None:
    template = "${tck://Field/ownerName} ${tck://kv/Any} ${q://first_name} ${e://Field/x}"
    assert template_problems(template, questions=["first_name"]) == []


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({}, True),
        ({"field": "q://product", "op": "is", "value": "360"}, True),
        ({"field": "q://product", "op": "is not", "value": "360"}, False),
        ({"field": "q://notes", "op": "contains", "value": "URGENT"}, True),
        ({"field": "q://score", "op": "<=", "value": 6}, True),
        ({"field": "q://score", "op": ">", "value": 6}, False),
        ({"field": "q://score", "op": ">=", "value": "3"}, True),
        ({"field": "q://product", "op": "<", "value": 4}, False),  # not a number
        ({"field": "q://phone", "op": "is empty"}, True),
        ({"field": "q://notes", "op": "is not empty"}, True),
        (
            {
                "any": [
                    {"field": "q://product", "op": "is", "value": "API"},
                    {
                        "all": [
                            {"field": "q://score", "op": "<", "value": 7},
                            {"field": "tck://Field/status", "op": "is", "value": "new"},
                        ]
                    },
                ]
            },
            True,
        ),  # fmt: skip
    ],
)
def test_conditions(condition: dict, expected: bool) -> None:
    values = {"q://product": "360", "q://notes": "urgent fix", "q://score": "3",
              "q://phone": "", "tck://Field/status": "new"}  # fmt: skip
    assert evaluate(condition, lambda name: values.get(name, "")) is expected


def test_condition_problems() -> None:
    assert condition_problems({"field": "product", "op": "equals"}) == [
        "conditions: field must start with one of q://, tck://Field/, tck://kv/, e://Field/, "
        "desk://",
        "conditions: op must be one of is, is not, contains, <, <=, >, >=, is empty, is not empty",
    ]
    assert condition_problems({"all": "x"})


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def answers(product: str) -> dict[str, str]:
    return {"first_name": "Ada", "last_name": "L", "email": "ada@example.com", "product": product}


def test_saving_a_workflow_with_an_unknown_placeholder_is_refused(desk: Engine) -> None:
    with (
        pytest.raises(ValidationFailed, match="unknown question") as failure,
        transaction(desk) as s,
    ):
        save_workflow(
            s, actor=None, name="Bad", event="survey.response", survey_name="checkin",
            tasks=[{"type": "create_ticket", "team": "360", "title": "${q://colour}"}],
        )  # fmt: skip
    assert "Bad" in str(failure.value)
    with (
        pytest.raises(ValidationFailed, match="send_email needs to") as failure,
        transaction(desk) as s,
    ):
        save_workflow(s, actor=None, name="Mail", event="ticket.created",
                      tasks=[{"type": "send_email", "subject": "${tck://Field/ownr}",
                              "delay_minutes": -1, "cc": "x"}])  # fmt: skip
    message = str(failure.value)
    for problem in ("unknown ticket field", "delay_minutes", "unknown key 'cc'", "needs body"):
        assert problem in message
    with pytest.raises(ValidationFailed, match="event must be one of"), transaction(desk) as s:
        save_workflow(s, actor=None, name="X", event="ticket.exploded",
                      tasks=[{"type": "create_ticket", "team": "360", "title": "t"}])  # fmt: skip


def test_events_from_a_plain_transaction_are_dispatched_once_by_the_backlog(desk: Engine) -> None:
    with transaction(desk) as s:  # no unit_of_work: as if the process died before dispatch
        submit_response(s, actor=get_user(s, "vera"), survey_name="checkin",
                        answers=answers("Stats iQ"))  # fmt: skip
    with read_session(desk) as s:
        assert s.exec(select(func.count()).select_from(Ticket)).one() == 0
    assert dispatch_backlog(desk) >= 1
    assert dispatch_backlog(desk) == 0  # nothing left: no workflow runs twice
    with read_session(desk) as s:
        tickets = s.exec(select(Ticket)).all()
        runs = s.exec(select(WorkflowRun)).all()
        undispatched = s.exec(select(Event).where(col(Event.dispatched_at).is_(None))).all()
    assert [t.title for t in tickets] == ["Ada L needs help with Stats iQ"]
    assert len({(r.workflow_id, r.event_id) for r in runs}) == len(runs)
    assert undispatched == []


def test_a_backlog_pass_with_nothing_to_do_waits_for_no_writer(desk: Engine) -> None:
    """Every worker's every pass looks for undispatched events; on SQLite the look must not
    take the write lock (it would hold pulls off while it walks the log). Here another
    program holds the write lock: the pass still answers at once instead of waiting out the
    busy timeout and failing."""
    if not is_sqlite(desk):
        pytest.skip("SQLite's one write lock")
    with unit_of_work(desk) as s:
        submit_response(s, actor=get_user(s, "vera"), survey_name="checkin",
                        answers=answers("360"))  # fmt: skip
    with closing(sqlite3.connect(str(desk.url.database), isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        assert dispatch_backlog(desk) == 0
        other.execute("ROLLBACK")


def test_disabled_workflow_does_not_run(desk: Engine) -> None:
    with transaction(desk) as s:
        set_enabled(s, actor=None, name="Check-in: 360", enabled=False)
    with unit_of_work(desk) as s:
        submit_response(s, actor=get_user(s, "vera"), survey_name="checkin",
                        answers=answers("360"))  # fmt: skip
    with read_session(desk) as s:
        assert s.exec(select(func.count()).select_from(Ticket)).one() == 0


def test_copy_retargets_team_and_condition(desk: Engine) -> None:
    with transaction(desk) as s:
        copy_workflow(s, actor=None, name="Check-in: 360", new_name="Check-in: Solo 2",
                      team="Solo")  # fmt: skip
        copy = get_workflow(s, "Check-in: Solo 2")
        assert copy.tasks[0]["team"] == "Solo"
        assert copy.conditions == {"all": [{"field": "q://product", "op": "is", "value": "Solo"}]}
        assert get_workflow(s, "Check-in: 360").tasks[0]["team"] == "360"
    with pytest.raises(Conflict), transaction(desk) as s:
        copy_workflow(s, actor=None, name="Check-in: 360", new_name="Check-in: Solo")
    with pytest.raises(PermissionDenied, match="admin"), transaction(desk) as s:
        copy_workflow(s, actor=get_user(s, "maya"), name="Check-in: 360", new_name="Z")
