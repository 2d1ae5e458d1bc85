"""Reading a file a user names (an attachment, a seed file): a regular file, read with a cap;
and writing one (an attachment saved from a ticket): a new owner-only file at exactly that path.

A symbolic link is refused, not followed (a link to /etc/shadow would otherwise be stored as
an attachment); so are FIFOs, sockets and devices (a FIFO named ``notes.txt`` would block
the command forever, ``/dev/zero`` never ends). The path is looked at without following it,
then opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again on the open descriptor, so a
file swapped in between is refused too. Never more than ``limit + 1`` bytes are read.

``save_user_file`` writes 0600 (``cxdesk.locations``) at the path given, never at a name taken
from the data (an attachment called ``../../.bashrc`` names nothing on disk). An existing path
is refused unless ``replace``: then a file or a symbolic link there is replaced (the link
itself, its target untouched), atomically. A folder is always refused.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from cxdesk.errors import Conflict, DeskError
from cxdesk.i18n import _
from cxdesk.locations import write_new_private_file, write_private_file

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_KINDS = (
    (stat.S_ISLNK, "a symbolic link (name the file itself)"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def _too_big(path: Path, size: int | None, limit: int) -> DeskError:
    """``size`` None: the file grew past the limit while it was read."""
    if size is None:
        return DeskError(
            _("{name}: is larger; the limit is {limit} KB").format(
                name=path.name, limit=limit // 1024
            )
        )
    return DeskError(
        _("{name}: is {size} KB; the limit is {limit} KB").format(
            name=path.name, size=size // 1024, limit=limit // 1024
        )
    )


def read_regular_file(path: Path, *, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path`` (``what`` names it in errors: "attachment"),
    refused with one line if it is anything else or larger than ``limit`` bytes."""
    try:
        kind = _not_regular(os.lstat(path).st_mode)
        if kind is not None:
            raise DeskError(
                _("Cannot read {what} {path}: it is {kind}").format(what=what, path=path, kind=kind)
            )
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a link after the look
            raise DeskError(
                _("Cannot read {what} {path}: it is a symbolic link").format(what=what, path=path)
            ) from exc
        raise DeskError(
            _("Cannot read {what} {path}: {strerror}").format(
                what=what, path=path, strerror=exc.strerror
            )
        ) from exc
    try:
        info = os.fstat(descriptor)
        kind = _not_regular(info.st_mode)
        if kind is not None:
            raise DeskError(
                _("Cannot read {what} {path}: it is {kind}").format(what=what, path=path, kind=kind)
            )
        if info.st_size > limit:
            raise _too_big(path, info.st_size, limit)
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0 and (chunk := os.read(descriptor, min(remaining, 1 << 16))):
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise DeskError(
            _("Cannot read {what} {path}: {strerror}").format(
                what=what, path=path, strerror=exc.strerror
            )
        ) from exc
    finally:
        os.close(descriptor)
    content = b"".join(chunks)
    if len(content) > limit:  # it grew since it was measured
        raise _too_big(path, None, limit)
    return content


def save_user_file(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write ``data`` to ``path`` as a new 0600 file (see the module); ``Conflict`` when the
    path exists and ``replace`` is False, ``DeskError`` for anything else in the way."""
    try:
        mode: int | None = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise DeskError(
            _("Cannot write {path}: {strerror}").format(path=path, strerror=exc.strerror)
        ) from exc
    if mode is not None and stat.S_ISDIR(mode):
        raise DeskError(
            _("Cannot write {path}: it is a folder (name the file to write)").format(path=path)
        )
    if mode is not None and not replace:
        raise Conflict(_("{path} already exists").format(path=path))
    if not path.parent.is_dir():
        raise DeskError(
            _("Cannot write {path}: no folder {parent}").format(path=path, parent=path.parent)
        )
    try:
        if replace:
            write_private_file(path, data)
        else:
            write_new_private_file(path, data)
    except FileExistsError as exc:  # made by someone else since the look
        raise Conflict(_("{path} already exists").format(path=path)) from exc
    except OSError as exc:
        raise DeskError(
            _("Cannot write {path}: {strerror}").format(path=path, strerror=exc.strerror)
        ) from exc
