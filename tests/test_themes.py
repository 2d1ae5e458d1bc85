"""Theme files: the shipped dark, light and high-contrast themes load into Textual, and a broken
file is reported in one line and skipped, never fatal."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest
from textual.app import App
from textual.theme import Theme

from cxdesk.app import create_app
from cxdesk.config import Settings
from cxdesk.locations import config_dir, package_dir
from cxdesk.store.db import make_engine
from cxdesk.themes import load_theme_file, load_themes, theme_folders
from tests.tui_helpers import notices

SHIPPED = ["cxdesk-dark", "cxdesk-high-contrast", "cxdesk-light"]
GOOD = 'name = "mine"\ndark = false\n[colors]\nprimary = "#112233"\n'


def test_shipped_themes_load_and_apply() -> None:
    loaded = load_themes()
    assert loaded.problems == []
    assert sorted(loaded.names) == SHIPPED
    contrast = next(t for t in loaded.themes if t.name == "cxdesk-high-contrast")
    assert contrast.dark is False and contrast.background == "#FFFFFF"
    assert contrast.variables["block-cursor-background"] == "#000000"

    async def main() -> list[str]:
        app: App[None] = App()
        applied = []
        async with app.run_test() as pilot:
            for theme in loaded.themes:
                app.register_theme(theme)
                app.theme = theme.name
                await pilot.pause()
                applied.append(app.current_theme.name)
        return applied

    assert asyncio.run(main()) == [t.name for t in loaded.themes]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('name = "x"\n[colors\nprimary = 1', "not valid TOML"),
        ('name = "x"\n[colors]\nsecondary = "#000000"\n', "needs primary"),
        ('name = "x"\n[colors]\nprimary = "blurple-ish"\n', "'blurple-ish' is not a colour"),
        ('name = "x"\n[colors]\nprimary = 3\n', "colors.primary must be a colour"),
        ('name = "x"\nfont = "big"\n[colors]\nprimary = "red"\n', "unknown key 'font'"),
        ('name = "x"\n[colors]\nprimary = "red"\nsparkle = "red"\n', "unknown colour 'sparkle'"),
        ('[colors]\nprimary = "red"\n', "name must be"),
        ('name = "x"\ndark = "yes"\n[colors]\nprimary = "red"\n', "dark must be true or false"),
        ('name = "x"\n[colors]\nprimary = "red"\n[variables]\nborder = 1\n', "[variables]"),
    ],
)
def test_a_broken_theme_is_reported_and_skipped(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "broken.toml").write_text(text, encoding="utf-8")
    (tmp_path / "good.toml").write_text(GOOD, encoding="utf-8")
    loaded = load_themes([tmp_path])
    assert loaded.names == ["mine"]
    assert len(loaded.problems) == 1
    line = loaded.problems[0]
    assert line.startswith("Theme file broken.toml skipped: ") and problem in line, line
    assert "\n" not in line


def test_unreadable_files_and_folders_are_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "latin1.toml").write_bytes('name = "caf\xe9"'.encode("latin-1"))
    (tmp_path / "folder.toml").mkdir()  # a folder named like a theme is not a theme
    loaded = load_themes([tmp_path, tmp_path / "missing"])
    assert loaded.themes == []
    assert loaded.problems == ["Theme file latin1.toml skipped: not UTF-8 text"]


def test_the_shipped_themes_are_package_data() -> None:
    """Inside the package, listed as package data: a wheel carries them (scripts/wheel-check
    builds one, installs it in a fresh venv and loads them there)."""
    folder = theme_folders()[0]
    assert folder == package_dir() / "theme_files"
    assert sorted(p.name for p in folder.glob("*.toml")) == [
        "dark.toml",
        "high-contrast.toml",
        "light.toml",
    ]
    pyproject = tomllib.loads((package_dir().parent / "pyproject.toml").read_text("utf-8"))
    assert "theme_files/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["cxdesk"]


def test_a_user_theme_of_the_same_name_wins() -> None:
    folder = config_dir() / "themes"  # CXDESK_HOME is this test's tmp folder
    folder.mkdir(parents=True)
    (folder / "dark.toml").write_text(
        'name = "cxdesk-dark"\n[colors]\nprimary = "#ABCDEF"\n', encoding="utf-8"
    )
    assert theme_folders()[-1] == folder
    themes = {t.name: t for t in load_themes().themes}
    assert themes["cxdesk-dark"].primary == "#ABCDEF"
    assert isinstance(load_theme_file(folder / "dark.toml"), Theme)


def test_the_app_offers_the_themes_and_applies_the_configured_one(sqlite_url: str) -> None:
    folder = config_dir() / "themes"
    folder.mkdir(parents=True)
    (folder / "broken.toml").write_text("name = [", encoding="utf-8")
    engine = make_engine(sqlite_url)
    settings = Settings(extra={"theme": "cxdesk-high-contrast"})

    async def main() -> tuple[str, list[str], list[str]]:
        app = create_app(engine, settings=settings, deliver=False)
        async with app.run_test() as pilot:
            await pilot.pause()
            commands = [c.title for c in app.get_system_commands(app.screen)]
            notes = notices(app)
            return app.theme, commands, notes

    try:
        theme, commands, notes = asyncio.run(main())
    finally:
        engine.dispose()
    assert theme == "cxdesk-high-contrast"
    assert {f"Theme: {name}" for name in SHIPPED} <= set(commands)
    broken = [n for n in notes if "broken.toml" in n]
    assert len(broken) == 1 and broken[0].startswith("Theme file broken.toml skipped: not valid")
