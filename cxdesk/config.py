"""One settings object: the config file (TOML) overridden by environment variables.

Secrets (SMTP password, Twilio token) are read only from the environment, never from the file
or the database. Nothing is read at import time: call ``load_settings()``, which reads the
file again only when it changed (its size and modification time) or the variables did: a
check-in's workflows ask for the survey URL on every event.
"""

from __future__ import annotations

import os
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from cxdesk import locations
from cxdesk.errors import DeskError
from cxdesk.i18n import _


@dataclass(frozen=True)
class Settings:
    """Desk settings. Each field may come from ``config.toml`` or its ``CXDESK_*`` variable."""

    database_url: str = ""
    """SQLAlchemy URL; empty means the SQLite file in the user data directory."""
    survey_url: str = ""
    """Public base URL of ``cxdesk survey serve``, where CSAT links point; empty means
    ``DEFAULT_SURVEY_URL`` (the server's default address on this machine)."""
    extra: dict[str, object] = field(default_factory=dict)
    """Any other keys of the config file, for sections later code reads."""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{locations.default_database_path()}"

    @property
    def resolved_survey_url(self) -> str:
        """The survey base URL, without a trailing slash."""
        return (self.survey_url or DEFAULT_SURVEY_URL).strip().rstrip("/")


DEFAULT_SURVEY_URL = "http://127.0.0.1:8765"
_PLAIN_URL = re.compile(r"https?://[^\s<>\"'{}$]+")

_ENV = {
    "database_url": "CXDESK_DATABASE_URL",
    "survey_url": "CXDESK_SURVEY_URL",
}


_RACY_NS = 2_000_000_000
_read: dict[tuple[object, ...], Settings] = {}
"""The settings last read, under what they were read from (``_source``)."""


def _source(path: Path) -> tuple[object, ...]:
    """What the settings of ``path`` depend on: the file as it is now and the variables."""
    try:
        found = path.stat()
        file: tuple[int, int, int] | None = (found.st_ino, found.st_size, found.st_mtime_ns)
    except OSError:
        file = None
    return (str(path), file, *(os.environ.get(variable) for variable in _ENV.values()))


def load_settings(config_path: Path | None = None) -> Settings:
    """Read the config file (if any), then apply environment overrides; the last settings
    read when neither the file nor the variables changed since."""
    path = config_path or locations.config_file()
    source = _source(path)
    settings = _read.get(source)
    if settings is None:
        settings = _read_settings(path)
        _read.clear()  # one entry: the config as it is now
        if _settled(source):
            _read[source] = settings
    return settings


def _settled(source: tuple[object, ...]) -> bool:
    """Whether the file is old enough for its size and time to tell a change: one written
    again within the clock's tick may keep both (git's "racily clean" files)."""
    file = source[1]
    return not isinstance(file, tuple) or time.time_ns() - file[2] > _RACY_NS


def _read_settings(path: Path) -> Settings:
    values: dict[str, object] = {}
    if path.exists():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DeskError(
                _("Config file {path} is not valid TOML: {problem}").format(path=path, problem=exc)
            ) from exc
    known = {name: values.pop(name) for name in list(values) if name in _ENV}
    for name, variable in _ENV.items():
        if os.environ.get(variable):
            known[name] = os.environ[variable]
    for name, value in known.items():
        if not isinstance(value, str):
            raise DeskError(_("Config setting {name} must be a string").format(name=name))
    # Put into emails as is: a plain http(s) URL, no spaces, quotes or "${".
    survey_url = str(known.get("survey_url", "")).strip()
    if survey_url and not _PLAIN_URL.fullmatch(survey_url):
        raise DeskError(
            _("CXDESK_SURVEY_URL must be an http(s) URL, not {url!r}").format(url=survey_url)
        )
    return Settings(**known, extra=values)  # type: ignore[arg-type]
