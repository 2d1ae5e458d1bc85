"""Theme files (TOML) turned into Textual themes; a broken file is reported and skipped.

A theme file holds ``name``, ``dark`` (true/false), a ``[colors]`` table (``primary`` is
required; also secondary, accent, warning, error, success, foreground, background, surface,
panel, boost) and an optional ``[variables]`` table of Textual theme variables. The desk's
own themes ship in the package (``cxdesk/theme_files/``); a user adds more in the config
folder's ``themes/``. Nothing is read at import: ``load_themes`` does it when the app starts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

from cxdesk.locations import config_dir, shipped_themes_dir

COLOR_NAMES = ("primary", "secondary", "accent", "warning", "error", "success", "foreground",
               "background", "surface", "panel", "boost")  # fmt: skip
TOP_LEVEL_KEYS = frozenset({"name", "dark", "colors", "variables"})
MAX_THEME_BYTES = 64 * 1024


class ThemeFileError(ValueError):
    """Why one theme file cannot be used, in one line."""


def theme_folders() -> list[Path]:
    """Where themes are read from, in order: the desk's own, then the user's."""
    return [shipped_themes_dir(), config_dir() / "themes"]


def _color(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f"{where} must be a colour in quotes, not {value!r}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeFileError(f"{where}: {value!r} is not a colour") from None
    return value


def theme_from_dict(data: dict[str, Any]) -> Theme:
    """A Textual theme from a parsed theme file; ``ThemeFileError`` says what is wrong."""
    unknown = sorted(set(data) - TOP_LEVEL_KEYS)
    if unknown:
        raise ThemeFileError(f"unknown key {unknown[0]!r} (expected {', '.join(TOP_LEVEL_KEYS)})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise ThemeFileError("name must be a text of 1-64 characters")
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError(f"dark must be true or false, not {dark!r}")
    colors = data.get("colors", {})
    if not isinstance(colors, dict):
        raise ThemeFileError("[colors] must be a table")
    unknown = sorted(set(colors) - set(COLOR_NAMES))
    if unknown:
        raise ThemeFileError(f"[colors] has unknown colour {unknown[0]!r}")
    if "primary" not in colors:
        raise ThemeFileError("[colors] needs primary")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ThemeFileError("[variables] must be a table of texts")
    parsed: dict[str, str | None] = {key: None for key in COLOR_NAMES}
    parsed.update({key: _color(value, f"colors.{key}") for key, value in colors.items()})
    return Theme(
        name=name.strip(),
        primary=str(parsed["primary"]),
        secondary=parsed["secondary"],
        accent=parsed["accent"],
        warning=parsed["warning"],
        error=parsed["error"],
        success=parsed["success"],
        foreground=parsed["foreground"],
        background=parsed["background"],
        surface=parsed["surface"],
        panel=parsed["panel"],
        boost=parsed["boost"],
        dark=dark,
        variables=dict(variables),
    )


def load_theme_file(path: Path) -> Theme:
    try:
        if path.stat().st_size > MAX_THEME_BYTES:
            raise ThemeFileError(f"larger than {MAX_THEME_BYTES // 1024} KB")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeFileError(f"cannot read it ({exc.strerror or exc})") from exc
    except UnicodeDecodeError:
        raise ThemeFileError("not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"not valid TOML ({exc})") from exc
    return theme_from_dict(data)


@dataclass
class LoadedThemes:
    """The themes that loaded, and one line per file that did not."""

    themes: list[Theme] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [theme.name for theme in self.themes]


def load_themes(folders: Sequence[Path] | None = None) -> LoadedThemes:
    """Every ``*.toml`` theme in the folders; a later file of the same name replaces an
    earlier one (a user's copy wins over the desk's)."""
    loaded = LoadedThemes()
    by_name: dict[str, Theme] = {}
    for path in _theme_files(theme_folders() if folders is None else folders):
        try:
            theme = load_theme_file(path)
        except ThemeFileError as exc:
            loaded.problems.append(f"Theme file {path.name} skipped: {exc}")
            continue
        by_name[theme.name] = theme
    loaded.themes = list(by_name.values())
    return loaded


def _theme_files(folders: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        try:
            files.extend(sorted(p for p in folder.glob("*.toml") if p.is_file()))
        except OSError:
            continue  # a missing or unreadable folder has no themes
    return files
