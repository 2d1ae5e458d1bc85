"""The desk's error types: every user mistake is one of these, carrying a one-line message.

The message is made in the current language (``cxdesk.i18n``) where the error is raised:
``NotFound(_("No user {name!r}").format(name=name))``; a ``ValidationFailed``'s field names
stay codes, their messages are translated.

The CLI prints ``str(error)`` on one line and exits non-zero; the TUI shows it as a
notification. Anything that is not a ``DeskError`` is a bug and may show a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

from cxdesk.i18n import N_, _

DESK_UNREACHABLE = N_("desk database unreachable, retrying")
"""What a deliverer logs and the desk app shows (``_(DESK_UNREACHABLE)``) while the database
cannot be used."""


def must_be_one_of(choices: Iterable[str]) -> str:
    """A field's problem when its value is not one of ``choices`` (codes, shown as they are)."""
    return _("must be one of {choices}").format(choices=", ".join(choices))


def unknown_keys(where: str, keys: Iterable[str]) -> str:
    """A definition's problem when it has keys the desk does not know (codes, as they are)."""
    return _("{where}: unknown keys {keys}").format(where=where, keys=", ".join(sorted(keys)))


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
        super().__init__(
            _("; ").join(
                _("{field}: {message}").format(field=field, message=message)
                for field, message in self.errors.items()
            )
        )
