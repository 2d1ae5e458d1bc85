"""The theme and language the desk keeps in ``config.toml`` (``cxdesk/preferences.py``): the
file edited in place, a symlinked file kept a link, nothing left behind when a write fails."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from cxdesk import preferences
from cxdesk.preferences import save_preference


def test_the_rest_of_the_file_stays_and_both_choices_are_kept(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('# my desk\ndatabase_url = "sqlite:///x.db"  # here\n', encoding="utf-8")
    os.chmod(config, 0o600)
    savers = [
        threading.Thread(target=save_preference, args=(key, value, config))
        for key, value in (("theme", "cxdesk-dark"), ("language", "ja"))
    ]
    for saver in savers:
        saver.start()
    for saver in savers:
        saver.join()
    text = config.read_text(encoding="utf-8")
    assert "# my desk" in text and "# here" in text
    assert 'theme = "cxdesk-dark"' in text and 'language = "ja"' in text
    assert config.stat().st_mode & 0o777 == 0o600


def test_a_symlinked_config_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "cxdesk.toml"
    real.parent.mkdir()
    real.write_text("# kept in my dotfiles\n", encoding="utf-8")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    assert save_preference("language", "fr", link) is None
    assert link.is_symlink()
    assert 'language = "fr"' in real.read_text(encoding="utf-8")


def test_a_failed_write_leaves_no_temporary_file_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("# mine\n", encoding="utf-8")

    def refuse(source: str, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(preferences.os, "replace", refuse)
    problem = save_preference("theme", "cxdesk-dark", config)
    assert problem == f"Could not save theme in {config}: disk full"
    assert not list(tmp_path.glob(".config-*"))  # the temporary file is gone
    assert config.read_text(encoding="utf-8") == "# mine\n"


def test_a_file_that_is_not_toml_is_left_alone(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("theme = = broken\n", encoding="utf-8")
    problem = save_preference("theme", "cxdesk-dark", config)
    assert problem is not None and problem.startswith(f"Could not save theme in {config}: ")
    assert config.read_text(encoding="utf-8") == "theme = = broken\n"
