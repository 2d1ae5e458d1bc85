"""Click's usage errors in the CLI's language (issue 17, item 1; ``cxdesk.cli.usage_errors``):
an unknown option, a missing or wrong value, extra arguments; in the pseudo-language nothing is
left outside the catalog; a logged-in user's language is spoken before ``--as`` is read."""

from __future__ import annotations

import pytest

from cxdesk.i18n import PSEUDO
from tests.cli_helpers import Cli, CliResult
from tests.pseudo import untranslated
from tests.test_i18n_cli import in_language

MISTAKES = [
    ["tickets", "list", "--bogus"],
    ["tickets", "list", "--stat"],  # with its possible options
    ["tickets", "list", "--limit", "abc"],
    ["tickets", "list", "--limit", "0"],
    ["tickets", "list", "--limit"],
    ["tickets", "list", "extra", "words"],
    ["tickets", "lsit"],
    ["user", "add"],
]


def usage_error(result: CliResult) -> str:
    assert "Traceback" not in result.output, str(result)
    assert result.exit_code == 2 and result.stdout == "", str(result)
    return result.stderr


@pytest.mark.parametrize("words", MISTAKES, ids=" ".join)
def test_a_usage_error_speaks_only_catalog_text(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, words: list[str]
) -> None:
    shown = usage_error(in_language(monkeypatch, cli, PSEUDO, *words))

    options = [
        "--as",
        "--status",
        "--team",
        "--help",
        "--limit",
        "OPTIONS",
        "COMMAND",
        "ARGS",
        "username",
    ]
    data = ["cxdesk", *words, *options, "'0'", "'abc'", "'list'"]
    assert untranslated(shown, data=data) == [], shown


def test_a_usage_error_reads_french_and_english(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    french = usage_error(in_language(monkeypatch, cli, "fr", "tickets", "list", "--bogus"))
    value = usage_error(in_language(monkeypatch, cli, "fr", "tickets", "list", "--limit", "abc"))
    english = usage_error(cli("tickets", "list", "--bogus"))

    assert french.splitlines()[0].startswith("Utilisation : "), french
    assert "Essayez '" in french and "tickets list --help' pour l'aide." in french, french
    assert french.splitlines()[-1] == "Erreur : Option inconnue : --bogus", french
    expected = "Erreur : Valeur invalide pour '--limit' : 'abc' n'est pas un nombre entier"
    assert value.splitlines()[-1] == expected, value
    assert english.splitlines()[-1] == "Error: No such option: --bogus", english
    assert "for help." in english


@pytest.mark.usefixtures("first_admin")
def test_a_logged_in_users_language_is_spoken_before_as_is_read(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXDESK_PASSWORD", "a long password")
    added = cli("user", "add", "marie", "--name", "Marie Roux", "--email", "m@example.com",
                "--role", "expert", "--lang", "fr", "--as", "admin")  # fmt: skip
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", "a long password")
    assert added.exit_code == 0, str(added)
    assert cli("login", "marie").exit_code == 0
    monkeypatch.delenv("CXDESK_USER")  # the login alone says who acts

    shown = usage_error(cli("tickets", "list", "--bogus"))  # the environment asks for English

    assert shown.splitlines()[-1] == "Erreur : Option inconnue : --bogus", shown
