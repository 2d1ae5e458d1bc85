"""A small desk for store and engine tests: two teams, three experts, a volunteer, an admin."""

from __future__ import annotations

from sqlalchemy import Engine

from cxdesk.engine.dispatch import pull_and_dispatch
from cxdesk.engine.workflows import save_workflow
from cxdesk.store import directory
from cxdesk.store.db import read_session, transaction
from cxdesk.store.surveys import save_survey
from tests.cli_helpers import TEST_PASSWORD

CHECKIN_QUESTIONS = [
    {"id": "first_name", "label": "First name", "type": "text", "required": True},
    {"id": "last_name", "label": "Last name", "type": "text", "required": True},
    {"id": "email", "label": "Email", "type": "email", "required": True},
    {"id": "phone", "label": "Phone", "type": "phone"},
    {"id": "username", "label": "Username", "type": "text"},
    {"id": "product", "label": "Product", "type": "choice", "required": True,
     "choices": ["360", "Stats iQ", "Solo"]},
    {"id": "notes", "label": "Notes", "type": "textarea"},
]  # fmt: skip


def build_small_desk(engine: Engine) -> None:
    """Teams 360 and Stats iQ (+ Solo with one member), queues, users, check-in routing."""
    with transaction(engine) as s:
        directory.ensure_builtin_statuses(s)
        for team in ("360", "Stats iQ", "Solo"):
            directory.add_team(s, actor=None, name=team)
            directory.add_queue(s, actor=None, name=team, team=team)
        people = [
            ("maya", "expert", ["360", "Stats iQ"]),
            ("omar", "expert", ["360"]),
            ("kenji", "expert", ["Stats iQ", "Solo"]),
            ("vera", "volunteer", []),
            ("admin", "admin", []),
        ]
        for username, role, teams in people:
            directory.add_user(
                s,
                actor=None,
                username=username,
                name=username.title(),
                email=f"{username}@example.com",
                password=TEST_PASSWORD,
                role=role,
                teams=teams,
            )
        directory.add_status(s, actor=None, name="Follow up later", category="open")
        save_survey(s, actor=None, name="checkin", title="Check-in", kind="checkin",
                    questions=CHECKIN_QUESTIONS)  # fmt: skip
        for team in ("360", "Stats iQ", "Solo"):
            save_workflow(
                s,
                actor=None,
                name=f"Check-in: {team}",
                event="survey.response",
                survey_name="checkin",
                conditions={"all": [{"field": "q://product", "op": "is", "value": team}]},
                tasks=[
                    {
                        "type": "create_ticket",
                        "team": team,
                        "title": "${q://first_name} ${q://last_name} needs help with "
                        "${q://product}",
                        "comment_question": "notes",
                        "data": [
                            ["Firstname", "${q://first_name}"],
                            ["Lastname", "${q://last_name}"],
                            ["Email", "${q://email}"],
                            ["Phone", "${q://phone}"],
                            ["Username", "${q://username}"],
                            ["Product", "${q://product}"],
                        ],
                    }
                ],
            )


def pull(engine: Engine, expert: str, queue: str) -> str:
    """``expert`` pulls the next ticket of ``queue`` as the desk does (its workflows run
    after the pull commits); the ticket's key."""
    with read_session(engine) as session:
        actor = directory.get_user(session, expert)
    return pull_and_dispatch(engine, actor=actor, queue_name=queue).key
