"""What a person chooses in the desk and keeps for the next start: the theme and the language,
saved as the top-level keys ``theme`` and ``language`` of the config file (``config.toml``).

The file is edited, not rewritten: tomlkit keeps its other keys, tables, comments and layout
as they were. A file that is not valid TOML is left alone (the choice holds for this run and
the problem is said in one line). The write is atomic (a temporary file, then a rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cxdesk import locations

THEME_KEY = "theme"
LANGUAGE_KEY = "language"


def save_preference(key: str, value: str, path: Path | None = None) -> str | None:
    """Set ``key`` to ``value`` in the config file (made if missing); the problem in one line
    when it could not be saved, else None."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    target = path or locations.config_file()
    try:
        text = target.read_text(encoding="utf-8") if target.exists() else ""
        document = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, TOMLKitError) as error:
        return f"Could not save {key} in {target}: {error}"
    if document.get(key) == value:
        return None
    document[key] = value
    try:
        locations.make_private_folder(target.parent)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".config-", suffix=".toml")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(tomlkit.dumps(document))
        if target.exists():  # keep who may read it (a database URL may hold a password)
            os.chmod(temporary, target.stat().st_mode & 0o7777)
        os.replace(temporary, target)
    except OSError as error:
        return f"Could not save {key} in {target}: {error}"
    return None
