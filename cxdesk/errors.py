"""The desk's error types: every user mistake is one of these, carrying a one-line message.

The CLI prints ``str(error)`` on one line and exits non-zero; the TUI shows it as a
notification. Anything that is not a ``DeskError`` is a bug and may show a traceback.
"""

from __future__ import annotations

DESK_UNREACHABLE = "desk database unreachable, retrying"
"""What a deliverer logs and the desk app shows while the database cannot be used."""


class DeskError(Exception):
    """A user mistake or a refused action; ``str()`` is the one-line message."""


class NotFound(DeskError):
    """A named thing (user, team, queue, ticket...) does not exist."""


class PermissionDenied(DeskError):
    """The acting user may not do this."""


class Conflict(DeskError):
    """The change contradicts what is stored (duplicate name, ticket already closed...)."""


class QueueEmpty(DeskError):
    """Nothing is waiting in the queue the expert pulled from."""


class ValidationFailed(DeskError):
    """One or more fields are invalid; ``errors`` maps field name to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))
