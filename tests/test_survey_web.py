"""The survey server (``cxdesk survey serve``) on the demo desk, SQLite and PostgreSQL.

The server runs for real on 127.0.0.1 (a thread of this process) and is spoken to over HTTP:
with urllib for the protocol-level checks, and with a real browser (Debian's chromium,
headless, driven by Playwright) answering a CSAT survey from the link in an email the
delivery worker handed to a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import re
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from sqlalchemy import Engine, text, update
from sqlmodel import Session, col, select

from cxdesk.config import Settings
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.store.db import transaction
from cxdesk.store.models import Event, OutboxMessage, SurveyResponse, Ticket, User, utcnow
from cxdesk.web.settings import ServerSettings
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.loop_helpers import team_of
from tests.peers import SmtpPeer
from tests.web_helpers import fetch, running_server

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def server(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The survey server on a free port; CSAT links point at it (CXDESK_SURVEY_URL)."""
    with running_server(engine) as base:
        monkeypatch.setenv("CXDESK_SURVEY_URL", base + "/")
        yield base


@pytest.fixture
def demo(cli: Cli, engine: Engine, server: str) -> Engine:
    result = cli("demo")
    assert result.exit_code == 0, str(result)
    return engine


def resolve(cli: Cli, queue: str, expert: str) -> str:
    key = cli("ticket", "pull", queue, "--as", expert).stdout.strip()
    done = cli("ticket", "update", key, "--as", expert, "--status", "resolved", "--comment", "Done")
    assert done.exit_code == 0, str(done)
    return key


def queued_csat_link(engine: Engine, key: str) -> str:
    with Session(engine) as session:
        body = session.exec(
            select(OutboxMessage.body)
            .join(Ticket, col(Ticket.id) == col(OutboxMessage.ticket_id))
            .where(Ticket.key == key, col(OutboxMessage.subject).contains("How did"))
        ).one()
    found = re.search(r"http://\S+", body)
    assert found, body
    return found.group(0)


def with_ref(link: str, ref: str) -> str:
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, "ref": ref})))


def csat_responses(engine: Engine) -> list[SurveyResponse]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(SurveyResponse)
                .where(col(SurveyResponse.ticket_id).is_not(None))
                .order_by(col(SurveyResponse.id))
            ).all()
        )


def user_id(engine: Engine, username: str) -> int | None:
    with Session(engine) as session:
        return session.exec(select(User.id).where(User.username == username)).one()


# -- CSAT over HTTP --------------------------------------------------------------------------


def test_a_csat_link_is_answered_once_and_a_forged_or_reused_link_is_refused(
    cli: Cli, demo: Engine, server: str
) -> None:
    zoe, sam = resolve(cli, "360", "maya"), resolve(cli, "API", "omar")
    link = queued_csat_link(demo, zoe)
    assert link.startswith(f"{server}/csat?SupportRep=Maya%20Chen&RepEmail=maya%40experts")
    ref = parse_qs(urlsplit(link).query)["ref"][0]

    shown = fetch(link)
    assert shown.status == 200
    assert f"How did Maya Chen do with your ticket {zoe}?" in shown.html
    assert 'type="radio" name="rating" value="5"' in shown.html

    before = table_counts(demo)
    out_of_range = fetch(link, {"rating": "9", "comment": "keep me"})
    assert out_of_range.status == 400
    assert 'role="alert"' in out_of_range.html and "must be between 1 and 5" in out_of_range.html
    assert ">keep me</textarea>" in out_of_range.html  # what was typed is kept
    assert table_counts(demo) == before

    answered = fetch(link, {"rating": "4", "comment": "Quick & <kind>"})
    assert answered.status == 200 and "Thank you" in answered.html
    [response] = csat_responses(demo)
    assert response.answers == {"rating": 4, "comment": "Quick & <kind>"}
    assert response.expert_id == user_id(demo, "maya")
    with Session(demo) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == zoe)).one()
        assert response.ticket_id == ticket.id
        logged = session.exec(
            select(Event.kind).where(Event.ticket_id == ticket.id, Event.response_id == response.id)
        ).all()
        assert sorted(logged) == ["survey.answered", "survey.response"]

    again = fetch(link, {"rating": "1"})
    assert again.status == 409 and "already answered" in again.html
    assert fetch(link).status == 409
    assert len(csat_responses(demo)) == 1

    ticket_id, expert_id, signature = ref.split(".")
    # Its last character changed (to "A" unless it was one already: one link in 64 ends so).
    changed = signature[:-1] + ("B" if signature.endswith("A") else "A")
    sam_id = ref_ticket_id(demo, sam)
    forged = [
        with_ref(link, f"{ticket_id}.{expert_id}.{changed}"),  # signature changed
        with_ref(link, f"{sam_id}.{expert_id}.{signature}"),  # someone else's ticket
        with_ref(link, f"{ticket_id}.{user_id(demo, 'omar')}.{signature}"),  # another expert
        with_ref(link, "1.1"),
        link.split("&ref=")[0],  # no ref at all
    ]
    for url in forged:
        refused = fetch(url, {"rating": "5"})
        assert refused.status == 403, url
        assert "This survey link is not valid" in refused.html
        assert fetch(url).status == 403
    assert len(csat_responses(demo)) == 1

    # Sam's own link still works, for Omar.
    fetch(queued_csat_link(demo, sam), {"rating": "2"})
    assert [r.expert_id for r in csat_responses(demo)] == [
        user_id(demo, "maya"),
        user_id(demo, "omar"),
    ]
    report = cli("report", "csat", "--by", "expert")
    assert re.search(r"maya\s.*100\.0%\s.*1\s", report.stdout), report.stdout
    assert re.search(r"omar\s.*0\.0%\s.*1\s", report.stdout), report.stdout


def forged_link(link: str) -> str:
    """``link`` with its signature's last character changed."""
    ref = parse_qs(urlsplit(link).query)["ref"][0]
    return with_ref(link, ref[:-1] + ("B" if ref.endswith("A") else "A"))


def write_lock_held(database: str) -> bool:
    with closing(sqlite3.connect(database, timeout=0)) as other:
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return True
        return False


def test_a_csat_page_is_shown_while_another_connection_holds_the_write_lock(
    cli: Cli, demo: Engine, server: str
) -> None:
    """Showing a CSAT page only reads: a real link and a forged one are answered while a
    writer holds SQLite's write lock (before, each view waited for the lock: a 500 after the
    10 s busy timeout)."""
    if demo.dialect.name != "sqlite":
        pytest.skip("the write lock is SQLite's")
    link = queued_csat_link(demo, resolve(cli, "360", "maya"))
    with transaction(demo) as holder:  # BEGIN IMMEDIATE: the write lock, held
        holder.execute(text("UPDATE ticket SET title = title WHERE 0 = 1"))
        shown, refused = fetch(link), fetch(forged_link(link))  # each waited on, up to 30 s
        assert demo.url.database is not None and write_lock_held(demo.url.database)
    assert (shown.status, refused.status) == (200, 403), (shown.html, refused.html)


def test_views_of_forged_csat_links_count_against_the_address(
    cli: Cli, demo: Engine, server: str
) -> None:
    link = queued_csat_link(demo, resolve(cli, "360", "maya"))
    limits = ServerSettings(answers_per_address=2, answers_per_email=100)
    with running_server(demo, limits) as base:
        real, forged = link.replace(server, base), forged_link(link).replace(server, base)
        assert [fetch(forged).status for _ in range(3)] == [403, 403, 429]
        assert fetch(real).status == 200  # a good link is shown, not counted
        before = table_counts(demo)
        assert fetch(real, {"rating": "5"}).status == 429  # the address used its allowance
        assert table_counts(demo) == before


def ref_ticket_id(engine: Engine, key: str) -> int:
    with Session(engine) as session:
        found = session.exec(select(Ticket.id).where(Ticket.key == key)).one()
        assert found is not None
        return found


# -- NPS over HTTP ---------------------------------------------------------------------------


def test_nps_on_the_web_a_detractor_opens_a_ticket_in_the_products_queue_a_promoter_not(
    demo: Engine, server: str
) -> None:
    index = fetch(server + "/")
    assert index.status == 200 and 'href="/nps"' in index.html
    form = fetch(server + "/nps")
    assert form.status == 200
    assert '<label class="question" for="email">Your email' in form.html
    tickets_before = table_counts(demo)["ticket"]

    missing = fetch(server + "/nps", {"email": "", "score": "3", "product": "API"})
    assert missing.status == 400 and "is required" in missing.html
    promoter = fetch(server + "/nps", {"email": "p@example.com", "score": "9", "product": "API"})
    assert promoter.status == 200
    assert table_counts(demo)["ticket"] == tickets_before
    detractor = fetch(
        server + "/nps",
        {"email": "d@example.com", "score": "3", "product": "XM Directory", "comment": "Slow"},
    )
    assert detractor.status == 200
    with Session(demo) as session:
        ticket = session.exec(select(Ticket).order_by(col(Ticket.id).desc())).first()
    assert ticket is not None and table_counts(demo)["ticket"] == tickets_before + 1
    assert (ticket.customer_email, ticket.customer_comment) == ("d@example.com", "Slow")
    assert team_of(demo, ticket) == "XM Directory"


def test_unknown_and_internal_surveys_are_not_served(demo: Engine, server: str) -> None:
    assert fetch(server + "/nope").status == 404
    assert fetch(server + "/checkin").status == 404  # the desk's own form, not public
    assert fetch(server + "/checkin", {"first_name": "x"}).status == 404


def test_survey_serve_mistakes_are_one_line(
    cli: Cli, demo: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("survey", "serve", "--port", str(port))
    assert_one_error_line(result, f"Cannot listen on 127.0.0.1:{port}")
    monkeypatch.setenv("CXDESK_SURVEY_URL", "javascript:alert(1)")
    assert_one_error_line(cli("report", "csat"), "CXDESK_SURVEY_URL must be an http(s) URL")


# -- a real browser, from a real email -------------------------------------------------------


def test_a_customer_answers_the_csat_survey_in_a_browser_from_the_delivered_email(
    cli: Cli, demo: Engine, server: str, smtp_server: SmtpPeer
) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian chromium is required: apt-get install -y chromium"
    key = resolve(cli, "Stats iQ", "kenji")
    with Session(demo) as session:  # the CSAT email's one-minute delay has passed
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.status) == "pending")
            .values(due_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    worker = DeliveryWorker(demo, Settings())
    worker.mail = smtp_server.settings()  # the worker's SMTP settings, pointing at aiosmtpd
    report = worker.run_once()
    # The CSAT email; the "ready" one is stale, its ticket resolved (SMS: no Twilio).
    assert (report.results["sent"], report.stale) == (1, 1), report.line()
    [mail] = [m for m in smtp_server.received if "How did" in str(m.message["Subject"])]
    assert mail.rcpt_tos == ["h.tanaka@example.jp"]
    body = mail.message.get_content()
    link = re.search(r"http://\S+", body)
    assert link, body

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page()
            page.goto(link.group(0))
            assert page.locator("h1").inner_text() == "How did we do?"
            page.get_by_text(f"How did Kenji Sato do with your ticket {key}?").wait_for()
            page.get_by_role("radio", name="5").check()
            page.get_by_label("Anything you would like to tell us?").fill("Kenji explained it well")
            page.get_by_role("button", name="Send my answer").click()
            page.get_by_role("heading", name="Thank you").wait_for()
            page.goto(link.group(0))  # the same link again
            page.get_by_role("heading", name="Already answered").wait_for()
        finally:
            browser.close()

    [response] = csat_responses(demo)
    assert response.answers == {"rating": 5, "comment": "Kenji explained it well"}
    assert response.expert_id == user_id(demo, "kenji")
    shown = cli("ticket", "show", key)
    assert "Survey answered" in shown.stdout and "rating=5" in shown.stdout
