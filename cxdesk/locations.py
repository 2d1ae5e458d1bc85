"""Every path cxdesk reads or writes, derived from platformdirs (or CXDESK_HOME for tests),
and how cxdesk makes its own files and folders: owner-only, whatever the umask.

The desk's files hold password hashes, customer data and the survey signing secret, so every
file cxdesk creates is ``PRIVATE_FILE_MODE`` (0600) and every folder ``PRIVATE_FOLDER_MODE``
(0700): ``make_private_folder``, ``create_private_file``, ``write_private_file``,
``write_new_private_file`` and ``private_replacement`` (a file written beside its destination,
then moved into place). A folder that already exists (a project folder holding the database,
``/tmp``) is never changed by them; ``make_owner_only`` tightens the desk's existing files
(``cxdesk init``).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from platformdirs import user_config_dir, user_data_dir, user_state_dir

from cxdesk.errors import DeskError

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


def shipped_themes_dir() -> Path:
    """The desk's own theme files, shipped in the package (``cxdesk/theme_files``: a folder
    named ``themes`` would sit beside the module ``cxdesk/themes.py``)."""
    return package_dir() / "theme_files"


def demo_seed_file() -> Path:
    """The example seed file for the Ask the Experts desk, shipped in the package."""
    return package_dir() / "seeds" / "ask_the_experts.toml"


# -- owner-only files and folders ---------------------------------------------------------------

PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


def make_private_folder(folder: Path) -> Path:
    """Create ``folder`` and any missing parents as 0700 (the umask cannot widen or narrow
    them); folders that already exist are left as they are. Returns ``folder``."""
    missing: list[Path] = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            candidate.mkdir(mode=PRIVATE_FOLDER_MODE)
        except FileExistsError:
            continue  # made by another program at the same moment: not ours to change
        candidate.chmod(PRIVATE_FOLDER_MODE)
    return folder


def create_private_file(path: Path) -> bool:
    """Create ``path`` as an empty 0600 file if it does not exist (its folder with
    ``make_private_folder``); True if this call created it. An existing file is left alone."""
    make_private_folder(path.parent)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(handle, PRIVATE_FILE_MODE)  # the umask may have taken the owner's bits
    finally:
        os.close(handle)
    return True


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` as a 0600 file, atomically (``private_replacement``),
    its folder made with ``make_private_folder`` if missing."""
    make_private_folder(path.parent)
    with private_replacement(path) as temporary:
        temporary.write_bytes(data)


def write_new_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` as a 0600 file holding ``data``; ``FileExistsError`` if anything (a
    file, a folder, a symbolic link) is there already: it is never replaced nor followed. A
    write that fails removes the file it created."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(handle, "wb") as output:
            os.fchmod(output.fileno(), PRIVATE_FILE_MODE)  # the umask may have taken bits
            output.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@contextmanager
def private_replacement(path: Path) -> Iterator[Path]:
    """A new 0600 temporary file beside ``path`` (whatever the umask) for the block to write;
    when the block ends it is renamed over ``path``, so a reader sees the old or the new file,
    never half of one, and never a moment where it is readable by others. If the block
    raises, the temporary file is removed and ``path`` is left as it was."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    temporary = Path(name)
    try:
        try:
            os.fchmod(handle, PRIVATE_FILE_MODE)  # the umask may have taken the owner's bits
        finally:
            os.close(handle)
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def make_owner_only(paths: Iterable[Path]) -> list[tuple[Path, int]]:
    """Take group and other access away from each existing path (0644 -> 0600, 0755 ->
    0700; the owner's own bits are kept); returns each path changed with its mode before.
    Missing paths and symlinks are skipped (a symlink's target is not the desk's to change);
    a path this account may not change is a ``DeskError`` naming it."""
    changed: list[tuple[Path, int]] = []
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode) or not mode & 0o077:
            continue
        try:
            path.chmod(mode & ~0o077)
        except OSError as exc:  # another account's file: its owner (or root) must do it
            raise DeskError(
                f"Cannot make {path} owner-only ({exc.strerror or exc}): "
                f"run `chmod go-rwx {path}` as its owner"
            ) from None
        changed.append((path, mode))
    return changed


def desk_private_paths(database_file: Path | None) -> list[Path]:
    """The desk's own folders and files that must be owner-only: the data and config
    folders, the config file, the login sessions' folder and file, and the SQLite database
    with its WAL, SHM and journal files (``database_file`` None: the desk is on PostgreSQL).
    A database kept elsewhere has its files listed but not its folder, which is the user's."""
    paths = [data_dir(), config_dir(), config_file(), state_dir(), sessions_file()]
    if database_file is not None:
        paths.append(database_file)
        paths.extend(
            database_file.with_name(database_file.name + suffix)
            for suffix in ("-wal", "-shm", "-journal")
        )
    return paths
