"""The demo desk's time-based workflows end to end: its daily digest runs once at 18:00 desk
time with two workers and reaches a real SMTP server once; its "waiting on customer" reminder
a day later; ``workflow list|show`` and the seed's checks. Controlled time: ``run_once(now=)``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.config import load_settings
from cxdesk.engine.schedule import parse_schedule
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.local_time import shown_time
from cxdesk.store import directory
from cxdesk.store.db import read_session
from cxdesk.store.models import WorkflowOccurrence, utcnow
from tests.cli_helpers import Cli, table_counts
from tests.peers import SmtpPeer
from tests.test_delivery import (
    CUSTOMER,
    check_in_and_pull,
    mail_env,  # noqa: F401  (a fixture)
    ok,
)
from tests.threads import at_once

DENVER = ZoneInfo("America/Denver")  # the demo seed's [desk] time_zone
ADMIN = "admin@experts.example.com"
WAITING = "Waiting on customer"


@pytest.fixture
def demo(cli: Cli, engine: Engine) -> Engine:
    ok(cli("demo"))
    return engine


def two_workers_at(engine: Engine, now: object) -> int:
    """Two workers' passes released together at ``now``: occurrences run between them."""
    pair = [DeliveryWorker(engine, load_settings()) for _ in range(2)]
    ran: list[int] = []
    errors = at_once(lambda w: ran.append(w.run_once(now=now).scheduled), pair)  # type: ignore[arg-type]
    assert not errors, errors
    return sum(ran)


def received(peer: SmtpPeer, to: str) -> list[str]:
    return [item.message["Subject"] for item in peer.received if to in item.message["To"]]


@pytest.mark.usefixtures("mail_env")
def test_the_demo_digest_runs_once_at_its_time(
    cli: Cli, demo: Engine, smtp_server: SmtpPeer
) -> None:
    key = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", "ines")
    at = parse_schedule("daily 18:00").next_after(utcnow(), DENVER)
    assert at is not None
    listing = ok(cli("workflow", "list", "--as", "admin"))
    assert "times in America/Denver" in listing
    offset = at.astimezone(DENVER).strftime("%z")  # the digest's next run, with its offset
    assert f"{shown_time(at, zone=DENVER)} {offset[:3]}:{offset[3:]}" in listing, listing
    assert "6:00\u202fPM" in shown_time(at, zone=DENVER)  # 18:00 in the desk zone

    assert two_workers_at(demo, at - timedelta(seconds=1)) == 0
    assert received(smtp_server, ADMIN) == []
    assert two_workers_at(demo, at) == 1
    assert two_workers_at(demo, at + timedelta(minutes=1)) == 0
    [subject] = received(smtp_server, ADMIN)
    assert subject == f"Ask the Experts: the day, {at.astimezone(DENVER):%Y-%m-%d} 18:00"
    [digest] = [i.message for i in smtp_server.received if i.message["Subject"] == subject]
    body = digest.get_content()
    assert "Now: " in body and " open, of which " in body
    assert "Website/App Feedback: " in body  # the per-team lines
    breaches = body.split("SLA breaches since the last digest:\n", 1)[1]
    if at - utcnow() > timedelta(minutes=50):  # its 45 minutes (an event day) ran out by then
        assert f"{key} " in breaches and "resolution due" in breaches


@pytest.mark.usefixtures("mail_env")
def test_the_demo_reminds_a_waiting_customer_a_day_later_if_still_so(
    cli: Cli, demo: Engine, smtp_server: SmtpPeer
) -> None:
    key = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", "ines")
    ok(
        cli(
            "ticket",
            "update",
            key,
            "--status",
            WAITING,
            "--comment",
            "asked for a log",
            "--as",
            "ines",
        )
    )
    with read_session(demo) as s:
        [due] = [o.due_at for o in s.exec(select(WorkflowOccurrence)).all()]
    shown = ok(cli("workflow", "show", "Waiting on customer: remind after a day", "--as", "ines"))
    assert '"delay_minutes": 1440' in shown and due.astimezone(DENVER).isoformat() in shown
    reminder = f"{key}: we are waiting on your answer"
    two_workers_at(demo, due - timedelta(seconds=1))  # (the day's digest runs meanwhile)
    assert reminder not in received(smtp_server, CUSTOMER["email"])
    two_workers_at(demo, due)
    two_workers_at(demo, due + timedelta(minutes=1))
    assert received(smtp_server, CUSTOMER["email"]).count(reminder) == 1


def test_a_bad_time_zone_or_schedule_in_a_seed_is_refused_and_applies_nothing(
    cli: Cli, demo: Engine, tmp_path: Path
) -> None:
    before = table_counts(demo)
    for text, problem in (
        ('[desk]\ntime_zone = "Mars/Olympus"\n', "'Mars/Olympus' is not a time zone"),
        ('[[workflows]]\nname = "Digest"\nschedule = "daily 6pm"\n'
         '[[workflows.tasks]]\ntype = "send_email"\nto = "a@example.com"\nsubject = "s"\n'
         'body = "b"\n', "schedule: daily takes a time as HH:MM, not '6pm'"),
    ):  # fmt: skip
        seed = tmp_path / "bad.toml"
        seed.write_text(text, encoding="utf-8")
        result = cli("seed", str(seed), "--as", "admin")
        assert result.exit_code == 1 and "Traceback" not in result.output, str(result)
        assert result.stderr.startswith("Error: ") and "1 problem, nothing applied" in result.stderr
        assert problem in result.stderr, result.stderr
    assert table_counts(demo) == before


def test_an_admin_changes_the_desks_time_zone_with_a_seed(
    cli: Cli, demo: Engine, tmp_path: Path
) -> None:
    seed = tmp_path / "zone.toml"
    seed.write_text('[desk]\ntime_zone = "Asia/Tokyo"\n', encoding="utf-8")
    ok(cli("seed", str(seed), "--as", "admin"))
    assert "times in Asia/Tokyo" in ok(cli("workflow", "list", "--as", "admin"))
    with read_session(demo) as s:
        assert str(directory.desk_zone(s)) == "Asia/Tokyo"
