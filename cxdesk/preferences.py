"""What a person chooses in the desk and keeps for the next start: the theme and the language,
saved as the top-level keys ``theme`` and ``language`` of the config file (``config.toml``).

The file is edited, not rewritten: tomlkit keeps its other keys, tables, comments and layout
as they were. A file that is not valid TOML is left alone (the choice holds for this run and
the problem is said in one line). The write is atomic (a temporary file, then a rename; the
temporary file is removed if anything fails), goes to the file a symlinked ``config.toml``
points to, and one save at a time reads, edits and writes (two quick choices both stay).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from cxdesk import locations
from cxdesk.i18n import _

THEME_KEY = "theme"
LANGUAGE_KEY = "language"
_ONE_AT_A_TIME = threading.Lock()


def save_preference(key: str, value: str, path: Path | None = None) -> str | None:
    """Set ``key`` to ``value`` in the config file (made if missing); the problem in one line
    when it could not be saved, else None."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    target = path or locations.config_file()
    if target.is_symlink():
        target = target.resolve()
    with _ONE_AT_A_TIME:
        try:
            text = target.read_text(encoding="utf-8") if target.exists() else ""
            document = tomlkit.parse(text)
        except (OSError, UnicodeDecodeError, TOMLKitError) as error:
            return _not_saved(key, target, error)
        if document.get(key) == value:
            return None
        document[key] = value
        temporary = ""
        try:
            locations.make_private_folder(target.parent)
            handle, temporary = tempfile.mkstemp(
                dir=target.parent, prefix=".config-", suffix=".toml"
            )
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(tomlkit.dumps(document))
            if target.exists():  # keep who may read it (a database URL may hold a password)
                os.chmod(temporary, target.stat().st_mode & 0o7777)
            os.replace(temporary, target)
        except OSError as error:
            if temporary:
                Path(temporary).unlink(missing_ok=True)
            return _not_saved(key, target, error)
    return None


def _not_saved(key: str, target: Path, error: Exception) -> str:
    return _("Could not save {key} in {path}: {reason}").format(key=key, path=target, reason=error)
