"""The translation catalogs (``scripts/catalogs.py``, ``cxdesk.i18n``): complete in every
language, placeholders kept, compiled; and the runtime's choice of language."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from textual.pilot import Pilot

from cxdesk import i18n
from cxdesk.app import CxDeskApp, create_app
from cxdesk.i18n import _, in_language, language_code, use_language
from cxdesk.screens.login import LoginScreen
from tests.desk import build_small_desk
from tests.pseudo import untranslated
from tests.tui_helpers import drawn_text, run_app, wait_until

ROOT = Path(__file__).resolve().parent.parent


def catalogs_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("catalogs", ROOT / "scripts" / "catalogs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["catalogs"] = module
    spec.loader.exec_module(module)
    return module


def test_every_catalog_translates_every_string_of_the_sources() -> None:
    """What CI checks: the .pot is what the sources make, every language's .po translates
    each string (no empty, fuzzy or obsolete entry) with the same {placeholders}, and the .mo
    files are the compiled .po files (they ship in the wheel)."""
    assert catalogs_tool().problems() == []


def test_the_check_finds_a_lost_placeholder_and_an_untranslated_string() -> None:
    tool = catalogs_tool()
    from babel.messages.catalog import Message

    kept = Message("Checked in: {key}", "Enregistré : {key}")
    lost = Message("Checked in: {key}", "Enregistré")
    empty = Message("Checked in: {key}", "")
    assert tool.message_problems(kept, "fr") == []
    assert "placeholders" in tool.message_problems(lost, "fr")[0]
    assert "untranslated" in tool.message_problems(empty, "fr")[0]


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("fr_FR.UTF-8", "fr"),
        ("ja-JP", "ja"),
        ("日本語", "ja"),
        ("Italiano", "it"),
        ("EN", "en"),
        ("de_DE.UTF-8", None),
        ("", None),
        ("C", None),
    ],
)
def test_language_codes(given: str, code: str | None) -> None:
    assert language_code(given) == code


def test_the_process_language_and_a_block_language() -> None:
    try:
        use_language("ja")
        assert _("Log in to the desk") == "デスクにログイン"
        with in_language("it"):
            assert _("Log in to the desk") == "Accedi al banco"
        assert _("Log in to the desk") == "デスクにログイン"
        use_language("de")  # not ours: English
        assert _("Log in to the desk") == "Log in to the desk"
        assert _("not in any catalog") == "not in any catalog"
        use_language(i18n.PSEUDO)
        assert _("Log in to the desk") == "⟦Log in to the desk⟧"
    finally:
        use_language(None)


def test_the_environment_language(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    assert i18n.language_from_environment() is None
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert i18n.language_from_environment() == "fr"
    monkeypatch.setenv("LANGUAGE", "it:fr")
    assert i18n.language_from_environment() == "it"
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    assert i18n.language_from_environment() == "it"  # LANGUAGE first, as gettext reads it


def test_the_login_screen_speaks_only_catalog_text(engine: Engine, pseudo_language: None) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "the login")
        await wait_until(pilot, lambda: "⟦Log in to the desk⟧" in drawn_text(app), "its text")
        assert untranslated(drawn_text(app), data=["cxdesk"]) == []

    run_app(engine, lambda e: create_app(e, poll_seconds=0.2), script, size=(80, 24))
