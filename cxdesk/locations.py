"""Every path cxdesk reads or writes, derived from platformdirs (or CXDESK_HOME for tests)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_dir, user_data_dir, user_state_dir

APP_NAME = "cxdesk"


def _home_override() -> Path | None:
    home = os.environ.get("CXDESK_HOME")
    return Path(home) if home else None


def data_dir() -> Path:
    """Folder holding the default SQLite database."""
    home = _home_override()
    return home / "data" if home else Path(user_data_dir(APP_NAME))


def config_dir() -> Path:
    """Folder holding ``config.toml``."""
    home = _home_override()
    return home / "config" if home else Path(user_config_dir(APP_NAME))


def state_dir() -> Path:
    """Folder holding this user's login sessions (``sessions.json``)."""
    home = _home_override()
    return home / "state" if home else Path(user_state_dir(APP_NAME))


def sessions_file() -> Path:
    return state_dir() / "sessions.json"


def config_file() -> Path:
    return config_dir() / "config.toml"


def default_database_path() -> Path:
    return data_dir() / "cxdesk.db"


def package_dir() -> Path:
    return Path(__file__).resolve().parent


def demo_seed_file() -> Path:
    """The example seed file for the Ask the Experts desk, shipped in the package."""
    return package_dir() / "seeds" / "ask_the_experts.toml"
