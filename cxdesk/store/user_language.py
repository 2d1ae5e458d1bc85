"""A user's language: checked, set (by an admin, or the user for themselves), and the one a
user speaks (theirs, else the desk's ``language`` setting)."""

from __future__ import annotations

from sqlmodel import Session

from cxdesk.errors import PermissionDenied, ValidationFailed
from cxdesk.i18n import DESK_LANGUAGE_SETTING, LANGUAGES, _, language_code
from cxdesk.store.directory import get_setting, get_user
from cxdesk.store.models import Role, User


def checked_language(value: str) -> str:
    """The code of ``value`` ("ja", "fr_FR", "Français"); ``ValidationFailed`` naming the
    languages the desk has otherwise."""
    code = language_code(value)
    if code is None or code not in LANGUAGES:
        choices = ", ".join(LANGUAGES)
        raise ValidationFailed(
            {
                "language": _("{value!r} is not a language of the desk ({choices})").format(
                    value=value, choices=choices
                )
            }
        )
    return code


def set_user_language(session: Session, *, actor: User, username: str, language: str) -> User:
    """Give ``username`` the language ``language`` (an admin for anyone, a user for
    themselves)."""
    code = checked_language(language)
    user = get_user(session, username)
    if actor.role != Role.admin and actor.id != user.id:
        raise PermissionDenied(
            _("Only an admin can change another user's language ({user} is {role})").format(
                user=actor.username, role=actor.role
            )
        )
    user.language = code
    session.add(user)
    session.flush()
    return user


def spoken_language(session: Session, user: User | None) -> str | None:
    """The language ``user`` is spoken to in: theirs, else the desk's setting; None when
    neither is set (the environment's then)."""
    if user is not None and language_code(user.language):
        return language_code(user.language)
    return language_code(get_setting(session, DESK_LANGUAGE_SETTING))
