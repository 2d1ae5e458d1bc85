"""A customer's language (issue 17 item 2, the customer side), on SQLite and PostgreSQL with
real peers: aiosmtpd receives the email, Prism (Twilio's contract) the SMS, the survey server
serves the page over HTTP.

- An Italian customer checked in with ``cxdesk checkin --lang it`` gets the Italian SMS and
  email, then the Italian CSAT email whose link opens the Italian survey page
  (``<html lang="it">``, the survey's title and questions in Italian) and thanks in Italian.
- A customer with no language gets the desk's (its ``language`` setting), the NPS page too.
- The check-in form's Language field (Pilot typing keys) defaults to the desk's language and
  stores the customer's choice; the Italian SMS goes out through Prism.
- A contact's language (``contact import``, a ``language`` column) goes to the tickets of
  its campaigns.
- An unknown language is refused in one line and nothing is written; a workflow whose
  ``languages`` table names an unknown language, key or placeholder is refused when saved.
- The web pages speak only catalog text (the pseudo-language).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from textual.pilot import Pilot
from textual.widgets import Input, Select

from cxdesk.app import CxDeskApp, create_app
from cxdesk.config import load_settings
from cxdesk.demo import DEMO_PASSWORD, build_demo
from cxdesk.engine.macros import action_problems
from cxdesk.engine.tasks import task_problems
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.i18n import DESK_LANGUAGE_SETTING, PSEUDO, in_language
from cxdesk.screens.checkin import LANGUAGE_ID, CheckinScreen
from cxdesk.store.customer_language import desk_language, text_in_language
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import set_setting
from cxdesk.store.models import OutboxMessage, Ticket
from cxdesk.web.pages import form_page, message_page
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.desk import build_small_desk
from tests.loop_helpers import write_csv
from tests.peers import SmtpPeer
from tests.pseudo import untranslated
from tests.test_delivery import (  # noqa: F401 (mail_env and sms_env are fixtures)
    SID,
    check_in_and_pull,
    mail_env,
    ok,
    outbox,
    outbox_rows,
    received_with_id,
    sms_env,
)
from tests.tui_helpers import choose, log_in, run_app, wait_until
from tests.web_helpers import fetch, running_server

GIULIA = {
    "first_name": "Giulia",
    "last_name": "Rossi",
    "email": "giulia.rossi@example.it",
    "phone": "+39 347 123 4567",
    "product": "API",
}
ANN = {
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann.lee@example.com",
    "phone": "1-415-555-2671",
    "product": "API",
}
EXPERT, EXPERT_NAME = "omar", "Omar Haddad"


@pytest.fixture
def server(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The survey server on a free port; CSAT links point at it (CXDESK_SURVEY_URL)."""
    with running_server(engine) as base:
        monkeypatch.setenv("CXDESK_SURVEY_URL", base + "/")
        yield base


def set_desk_language(engine: Engine, code: str) -> None:
    with transaction(engine) as session:
        set_setting(session, DESK_LANGUAGE_SETTING, code)


def rows_of(cli: Cli, key: str) -> list[dict[str, Any]]:
    return [row for row in outbox_rows(cli) if row["ticket"] == key]


@pytest.mark.slow
@pytest.mark.usefixtures("mail_env", "sms_env")
def test_an_italian_customer_gets_italian_sms_email_and_survey_page(
    cli: Cli, engine: Engine, smtp_server: SmtpPeer, server: str
) -> None:
    ok(cli("demo"))
    key = check_in_and_pull(cli, GIULIA, "API", EXPERT, "--lang", "it")
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        assert ticket.customer_language == "it"
    line = ok(cli("worker", "--once"))
    assert "failed 0" in line, line

    rows = rows_of(cli, key)
    [checked_in] = [row for row in rows if "registrazione" in row["body"]]
    assert checked_in["status"] == "stale"  # pulled before the worker ran
    assert checked_in["body"].startswith(f"Ciao Giulia, la tua registrazione per API al banco "
                                         f"Ask the Experts è confermata ({key}).")  # fmt: skip
    [sms] = [row for row in rows if row["channel"] == "sms" and row["status"] == "sent"]
    assert SID.match(sms["provider_id"]), sms  # accepted by Prism
    assert sms["body"] == (
        f"Ciao Giulia, {EXPERT_NAME} ti aspetta al banco Ask the Experts per aiutarti con API. "
        f"Il tuo ticket: {key}."
    )
    [mail] = [row for row in rows if row["channel"] == "email"]
    message = received_with_id(smtp_server, mail["provider_id"]).message
    assert str(message["Subject"]) == f"{EXPERT_NAME} ti aspetta ({key})"
    body = message.get_content()
    assert body.startswith("Ciao Giulia,\n") and "del team API ti aspetta" in body
    assert "Il team di Ask the Experts" in body and "ready" not in body

    # Resolved: the CSAT email in Italian, its link to the survey page in Italian.
    ok(cli("ticket", "update", key, "--as", EXPERT, "--status", "resolved", "--comment", "Ok"))
    [csat] = [r for r in rows_of(cli, key) if r["channel"] == "email" and r["id"] != mail["id"]]
    [row] = outbox(engine, csat["id"])
    assert DeliveryWorker(engine, load_settings()).run_once(now=row.due_at).results["sent"] == 1
    [row] = outbox(engine, csat["id"])
    message = received_with_id(smtp_server, row.provider_id or "").message
    assert str(message["Subject"]) == f"Com'è andata con {EXPERT_NAME}? ({key})"
    body = message.get_content()
    assert "Raccontaci com'è andata con" in body
    [link] = re.findall(r"http://\S+", body)

    page = fetch(link)
    assert page.status == 200
    assert '<html lang="it">' in page.html and "<h1>Com&#39;è andata?</h1>" in page.html
    assert f"Com’è andata con {EXPERT_NAME} per il tuo ticket {key}?" in page.html
    assert "Quanto sei soddisfatto dell&#39;aiuto ricevuto?" in page.html
    assert "(obbligatorio)" in page.html and "Invia la risposta" in page.html
    assert "How did" not in page.html and "Send my answer" not in page.html
    answered = fetch(link, {"rating": "5", "comment": "Perfetto"})
    assert answered.status == 200 and "Grazie! La tua risposta è stata registrata." in answered.html
    again = fetch(link)
    assert again.status == 409 and "Questo sondaggio è già stato compilato." in again.html


@pytest.mark.slow
@pytest.mark.usefixtures("mail_env", "sms_env")
def test_a_customer_with_no_language_gets_the_desks(
    cli: Cli, engine: Engine, smtp_server: SmtpPeer, server: str
) -> None:
    ok(cli("demo"))
    set_desk_language(engine, "fr")
    key = check_in_and_pull(cli, ANN, "API", EXPERT)
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        assert ticket.customer_language == "fr"  # the desk's when the customer checked in
    ok(cli("worker", "--once"))
    rows = rows_of(cli, key)
    [sms] = [row for row in rows if row["channel"] == "sms" and row["status"] == "sent"]
    assert sms["body"].startswith(f"Bonjour Ann, {EXPERT_NAME} vous attend au stand")
    [mail] = [row for row in rows if row["channel"] == "email"]
    message = received_with_id(smtp_server, mail["provider_id"]).message
    assert str(message["Subject"]) == f"{EXPERT_NAME} vous attend ({key})"
    # The desk's pages too: the open NPS survey, the hall board, a page that is not there.
    nps = fetch(server + "/nps")
    assert '<html lang="fr">' in nps.html and "Ask the Experts : nous recommanderiez-vous ?" in (
        nps.html
    )
    assert "Votre e-mail" in nps.html and "Envoyer ma réponse" in nps.html
    board = fetch(server + "/board")
    assert '<html lang="fr">' in board.html and "<h1>Salle d’attente</h1>" in board.html
    missing = fetch(server + "/nothing-here")
    assert missing.status == 404 and "Il n’y a pas d’enquête à cette adresse." in missing.html


def test_an_unknown_language_is_refused_in_one_line_and_nothing_is_written(
    cli: Cli, engine: Engine
) -> None:
    ok(cli("demo"))
    before = table_counts(engine)
    pairs = [arg for name, value in GIULIA.items() for arg in ("--answer", f"{name}={value}")]
    result = cli("checkin", "--as", "vera", *pairs, "--lang", "klingon")
    assert_one_error_line(result, "unknown language 'klingon' (known: en (English), ja (日本語)")
    assert table_counts(engine) == before
    # A language's own name is understood too.
    [key] = ok(cli("checkin", "--as", "vera", *pairs, "--lang", "Italiano")).split()
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        assert ticket.customer_language == "it"


@pytest.mark.slow
@pytest.mark.usefixtures("sms_env")
def test_the_checkin_form_asks_the_language_and_the_sms_goes_out_in_it(engine: Engine) -> None:
    build_demo(engine)
    set_desk_language(engine, "fr")

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot, password=DEMO_PASSWORD)
        await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "check-in")
        await wait_until(
            pilot, lambda: app.focused is not None and app.focused.id == "q-first_name", "form"
        )
        picker = app.screen.query_one(f"#{LANGUAGE_ID}", Select)
        assert picker.value == "fr"  # the desk's language by default
        for name, value in GIULIA.items():
            field = app.screen.query_one(f"#q-{name}")
            field.focus()
            await pilot.pause()
            if isinstance(field, Select):
                await choose(pilot, value)
            else:
                await pilot.press(*value)
        picker.focus()
        await pilot.pause()
        await choose(pilot, "Italiano")
        await wait_until(pilot, lambda: picker.value == "it", "Italiano chosen")
        app.screen.query_one("#q-notes", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: picker.value == "fr", "the form cleared")

    run_app(
        engine,
        lambda app_engine: create_app(app_engine, user="vera", poll_seconds=0.2, deliver=False),
        script,
        size=(120, 40),
    )
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.customer_email == GIULIA["email"])).one()
        assert ticket.customer_language == "it"
        [queued] = session.exec(
            select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id)
        ).all()
    assert queued.body.startswith("Ciao Giulia, la tua registrazione per API")
    DeliveryWorker(engine, load_settings()).run_once()
    [sent] = outbox(engine, queued.id or 0)
    assert sent.status == "sent" and SID.match(sent.provider_id or ""), sent


def test_a_message_in_a_language_it_lacks_falls_back_to_the_desks_then_as_written() -> None:
    task = {"body": "Hi", "languages": {"fr": {"body": "Bonjour"}, "it": {"body": "Ciao"}}}
    assert text_in_language(task, "it", "fr") == {"body": "Ciao"}
    assert text_in_language(task, "ja", "fr") == {"body": "Bonjour"}  # the desk's
    assert text_in_language(task, "ja", "en") == {"body": "Hi"}
    assert text_in_language(task, "en", "fr") == {"body": "Hi"}  # English is the text itself


def test_a_workflow_with_a_bad_languages_table_is_refused(engine: Engine) -> None:
    def problems(languages: Any) -> list[str]:
        task = {"type": "send_sms", "to": "${tck://Field/customerPhone}", "body": "Hi",
                "languages": languages}  # fmt: skip
        with Session(engine) as session:
            return task_problems(session, task, None)

    assert problems({"it": {"body": "Ciao ${tck://Field/key}"}}) == []
    assert problems({"de": {"body": "Hallo"}}) == [
        "languages: unknown language 'de' (known: en, ja, fr, it)"
    ]
    assert problems({"it": {"subject": "x"}}) == [
        "languages.it: unknown key 'subject' (known: body)"
    ]
    [bad] = problems({"it": {"body": "Ciao ${tck://Field/nope}"}})
    assert bad.startswith("languages.it.body: ") and "nope" in bad


def test_the_web_pages_speak_only_catalog_text() -> None:
    questions = [
        {"id": "rating", "label": "Rating", "type": "number", "min": 1, "max": 5,
         "required": True},
        {"id": "comment", "label": "Comment", "type": "textarea", "hint": "Kind words"},
    ]  # fmt: skip
    with in_language(PSEUDO):
        form = form_page(
            title="Survey", intro="Intro", questions=questions, action="/csat",
            errors={"rating": "Bad"},
        )  # fmt: skip
        thanks = message_page("Thanks", "Recorded")
    assert '<html lang="qps">' in form
    shown = re.sub(r"<[^>]+>", " ", form.split("</style>")[1])
    assert (
        untranslated(
            shown, data=["Survey", "Intro", "Rating", "Comment", "Kind words", "Bad", "csat"]
        )
        == []
    )
    assert "⟦Send my answer⟧" in form and "⟦(required)⟧" in form
    assert untranslated(re.sub(r"<[^>]+>", " ", thanks.split("</style>")[1]),
                        data=["Thanks", "Recorded"]) == []  # fmt: skip


def test_contacts_carry_a_language_to_their_campaign_tickets(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    build_small_desk(engine)
    rows = [
        ["Giulia", "giulia@example.it", "it"],
        ["Amélie", "amelie@example.fr", "Français"],
        ["Ann", "ann@example.com", ""],
        ["Kirk", "kirk@example.com", "klingon"],
    ]
    file = write_csv(tmp_path / "contacts.csv", ["name", "email", "language"], rows)
    result = cli("contact", "import", str(file))
    assert result.exit_code == 1 and "3 contacts imported" in result.stdout, str(result)
    [refused] = [line.strip() for line in result.error_lines]
    assert refused.startswith("line 5: unknown language 'klingon' (known: en (English)")
    listed = json.loads(ok(cli("contact", "list", "--json")))
    assert {c["email"]: c["language"] for c in listed} == {
        "giulia@example.it": "it", "amelie@example.fr": "fr", "ann@example.com": None,
    }  # fmt: skip
    ok(cli("campaign", "create", "Welcome", "--subject", "Hi", "--team", "360",
           "--filter", "email!=nobody@example.com"))  # fmt: skip
    with read_session(engine) as session:
        tickets = session.exec(select(Ticket)).all()
        assert {t.customer_email: t.customer_language for t in tickets} == {
            "giulia@example.it": "it", "amelie@example.fr": "fr", "ann@example.com": None,
        }  # fmt: skip


def test_a_seed_sets_the_desks_language_and_refuses_an_unknown_one(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    ok(cli("demo"))
    bad = tmp_path / "bad.toml"
    bad.write_text('[desk]\nlanguage = "de"\n', encoding="utf-8")
    refused = cli("seed", str(bad))
    assert refused.exit_code == 1 and "Traceback" not in refused.output, str(refused)
    assert "[desk]: language must be one of en, ja, fr, it" in refused.output
    good = tmp_path / "good.toml"
    good.write_text('[desk]\nlanguage = "it"\n', encoding="utf-8")
    ok(cli("seed", str(good)))
    with read_session(engine) as session:
        assert desk_language(session) == "it"


def test_a_macros_reply_is_in_the_customers_language(cli: Cli, engine: Engine) -> None:
    ok(cli("demo"))
    key = check_in_and_pull(cli, GIULIA, "API", EXPERT, "--lang", "it")
    ok(cli("ticket", "macro", key, "Resolved at the desk", "--as", EXPERT))
    [reply] = [r for r in rows_of(cli, key) if (r["subject"] or "").startswith("Re: ")]
    assert reply["body"].startswith("Ciao Giulia Rossi,\n\nGrazie per la visita al banco")
    with Session(engine) as session:
        bad = {"type": "reply", "body": "Hi", "languages": {"de": {"body": "Hallo"}}}
        assert action_problems(session, bad, None) == [
            "languages: unknown language 'de' (known: en, ja, fr, it)"
        ]
        bad = {"type": "reply", "body": "Hi", "languages": {"it": {"body": "${tck://x/y}"}}}
        [problem] = action_problems(session, bad, None)
        assert problem.startswith("languages.it.body: ")
