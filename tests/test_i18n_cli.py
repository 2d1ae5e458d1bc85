"""The CLI in the environment's language (issue 17, item 1): output, refusals and ``--help``
in French and Japanese through the catalog; JSON the same in every language; English when the
environment asks for nothing else (the ``cli`` fixture sets ``LANGUAGE=en``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cxdesk.i18n import PSEUDO, current_language
from tests.cli_helpers import Cli, CliResult, dump_tables
from tests.pseudo import untranslated
from tests.test_cli import BAD_SEED, SEEDED_TABLES

CHECKIN = ["checkin", "--as", "vera", "--answer", "first_name=Zoé", "--answer", "last_name=Roux"]
PRODUCT = ["--answer", "product=Stats iQ", "--answer", "email=zoe@example.com"]
TICKET_TABLES = ["ticket", "ticket_data", "event", "survey_response", "outbox"]
BAD_WORKFLOW = """
[[workflows]]
name = "Echo"
event = "ticket.created"
tasks = [{ type = "comment", body = "Seen", bogus = 1 }]
"""


@pytest.fixture
def demo_desk(cli: Cli) -> None:
    result = cli("demo")
    assert result.exit_code == 0, str(result)


def in_language(monkeypatch: pytest.MonkeyPatch, cli: Cli, language: str, *args: str) -> CliResult:
    monkeypatch.setenv("LANGUAGE", language)
    try:
        return cli(*args)
    finally:
        monkeypatch.setenv("LANGUAGE", "en")


def one_error_line(result: CliResult) -> str:
    assert "Traceback" not in result.output, str(result)
    assert result.exit_code == 1 and result.stdout == "", str(result)
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    return line


@pytest.mark.usefixtures("demo_desk")
def test_a_refused_checkin_is_one_translated_line_and_writes_nothing(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = dump_tables(engine, TICKET_TABLES)
    bad = [*CHECKIN, "--answer", "product=Stats iQ", "--answer", "email=zoe-at-example"]

    french = one_error_line(in_language(monkeypatch, cli, "fr", *bad))
    japanese = one_error_line(in_language(monkeypatch, cli, "ja", *bad))
    english = one_error_line(cli(*bad))

    assert french.startswith("Erreur : email : n'est pas une adresse e-mail valide"), french
    assert japanese.startswith("エラー：email：有効なメールアドレスではありません"), japanese
    assert english.startswith("Error: email: not a valid email address"), english
    missing = one_error_line(in_language(monkeypatch, cli, "fr", *CHECKIN))
    assert "product : est obligatoire" in missing, missing
    assert dump_tables(engine, TICKET_TABLES) == before


@pytest.mark.usefixtures("demo_desk")
def test_the_commands_people_use_most_speak_french_and_japanese(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked_in = in_language(monkeypatch, cli, "fr", *CHECKIN, *PRODUCT)
    assert checked_in.exit_code == 0, str(checked_in)
    pulled = in_language(monkeypatch, cli, "ja", "ticket", "pull", "Stats iQ", "--as", "kenji")
    key = pulled.stdout.strip()
    assert pulled.exit_code == 0 and key.startswith("EXP-"), str(pulled)

    updated = in_language(
        monkeypatch, cli, "fr", "ticket", "update", key, "--as", "kenji",
        "--status", "open", "--comment", "On regarde",
    )  # fmt: skip
    assert updated.stdout.startswith(f"{key} mis à jour (open, version "), str(updated)
    listed = in_language(monkeypatch, cli, "ja", "tickets", "list", "--as", "kenji")
    assert "チケット" in listed.stdout and "タイトル" in listed.stdout, str(listed)
    shown = in_language(monkeypatch, cli, "fr", "ticket", "show", key, "--as", "kenji")
    assert "Conversation" in shown.stdout and "Journal" in shown.stdout, str(shown)
    refused = in_language(monkeypatch, cli, "ja", "ticket", "pull", "--as", "kenji")
    assert (
        one_error_line(refused)
        == "エラー：キューを指定するか --any を指定してください（両方は不可）"
    )
    nobody = in_language(monkeypatch, cli, "fr", "user", "list", "--as", "ghost")
    assert one_error_line(nobody).startswith("Erreur : "), str(nobody)

    assert current_language() == "en"  # the CLI's language did not leak into the test


def test_help_follows_the_environment(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    french = in_language(monkeypatch, cli, "fr", "--help")
    japanese = in_language(monkeypatch, cli, "ja", "ticket", "pull", "--help")
    english = cli("--help")

    assert "Commandes" in french.stdout, str(french)
    assert "Enregistrer l'arrivée d'un client" in french.stdout, str(french)
    assert "キュー（または自分のいずれかのチーム）から次の待ちチケットを取り出します" in (
        japanese.stdout.replace("\n", "").replace(" ", "")
    ), str(japanese)
    assert "オプション" in japanese.stdout, str(japanese)
    assert "Commands" in english.stdout and "Check a customer in" in english.stdout, str(english)
    assert "Enregistrer" not in english.stdout


def test_the_environment_chooses_and_the_fixture_speaks_english(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "Check a customer in" in cli("--help").stdout  # the fixture's LANG=C.UTF-8
    monkeypatch.setenv("LANG", "it_IT.UTF-8")
    assert "Registra l'arrivo di un cliente" in cli("--help").stdout
    monkeypatch.setenv("LANGUAGE", "en")  # LANGUAGE comes first, as gettext reads it
    assert "Check a customer in" in cli("--help").stdout
    monkeypatch.delenv("LANGUAGE")
    monkeypatch.setenv("LANG", "de_DE.UTF-8")  # not one of ours: English
    assert "Check a customer in" in cli("--help").stdout


@pytest.mark.usefixtures("demo_desk")
def test_json_is_the_same_in_every_language(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = {
        language: in_language(
            monkeypatch, cli, language, "tickets", "list", "--json", "--as", "kenji"
        ).stdout
        for language in ("en", "fr", "ja", "it")
    }

    assert len(set(outputs.values())) == 1, outputs
    assert json.loads(outputs["ja"])[0]["status"] == "new"


HELPED = [
    [], ["checkin"], ["ticket"], ["ticket", "pull"], ["ticket", "update"], ["ticket", "show"],
    ["ticket", "reply"], ["tickets", "list"], ["user", "add"], ["login"], ["report", "csat"],
    ["report", "sla"],
]  # fmt: skip
CODES = re.compile(r"--[\w-]+|<[^>]*>|\{[^}]*\}|\[(?:OPTIONS|ARGS)\]|\b[A-Z][A-Z_]+\b|\bcxdesk\b")
"""What a help page shows that is not text: options, metavars, COMMAND, environment names."""


@pytest.mark.parametrize("command", HELPED, ids=lambda words: " ".join(words) or "cxdesk")
def test_help_speaks_only_catalog_text(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    shown = in_language(monkeypatch, cli, PSEUDO, *command, "--help")
    assert shown.exit_code == 0, str(shown)

    names = [line.split()[0] for line in shown.stdout.splitlines() if line.startswith("  ")]
    text = " ".join(CODES.sub(" ", shown.stdout).split())  # wrapped help texts on one line
    program = "python -m pytest"  # click's name for the program when pytest runs it
    assert untranslated(text, data=[program, *command, *names]) == [], shown.stdout


@pytest.mark.usefixtures("demo_desk")
def test_macro_list_json_is_english_in_every_language(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a macro does is prose on screen, but scripts read the same words in every language."""
    english = cli("macro", "list", "--json", "--as", "kenji").stdout
    japanese = in_language(monkeypatch, cli, "ja", "macro", "list", "--json", "--as", "kenji")
    assert japanese.stdout == english and json.loads(english)[0]["does"]
    table = in_language(monkeypatch, cli, "ja", "macro", "list", "--as", "kenji").stdout
    assert "マクロ" in table


def test_a_bad_seed_file_is_refused_in_the_admins_language(
    cli: Cli, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_file = tmp_path / "bad.toml"
    seed_file.write_text(BAD_SEED + BAD_WORKFLOW, encoding="utf-8")
    before = dump_tables(engine, SEEDED_TABLES)

    pseudo = in_language(monkeypatch, cli, PSEUDO, "seed", str(seed_file))
    french = in_language(monkeypatch, cli, "fr", "seed", str(seed_file))

    assert pseudo.exit_code == 1 and "Traceback" not in pseudo.output, str(pseudo)
    codes = [str(seed_file), "Alpha", "Ghost", "bob", "Echo", "ticket.created", "bogus"]
    assert untranslated(pseudo.stderr, data=codes) == [], pseudo.stderr
    assert "problèmes, rien n'a été appliqué :" in french.stderr, str(french)
    assert "ligne 4 : teams[2] (Alpha) : nom 'Alpha' en double dans [[teams]]" in french.stderr
    assert "tâche 1 : clé inconnue 'bogus'" in french.stderr, french.stderr
    assert dump_tables(engine, SEEDED_TABLES) == before


def test_a_channel_configuration_mistake_is_said_in_the_terminals_language(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    unset = one_error_line(in_language(monkeypatch, cli, "fr", "mail", "fetch", "--once"))
    monkeypatch.setenv("CXDESK_IMAP_HOST", "127.0.0.1")
    monkeypatch.setenv("CXDESK_IMAP_TLS", "sometimes")
    wrong = one_error_line(in_language(monkeypatch, cli, "fr", "mail", "fetch", "--once"))

    assert unset.startswith("Erreur : IMAP n'est pas configuré : définissez CXDESK_IMAP_HOST")
    assert wrong.startswith("Erreur : Le réglage imap.tls doit être "), wrong
