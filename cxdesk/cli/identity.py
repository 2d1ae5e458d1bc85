"""Who a command acts as, and the proof it needs: sessions, ``CXDESK_TOKEN``, or a password.

A command's proven identities are the user of ``CXDESK_TOKEN`` (if set; a bad token refuses the
command) and each user with a live session on this desk in the session file. ``--as USER`` (or
``CXDESK_USER``) picks one of them; a user not among them is proven by their password,
``CXDESK_LOGIN_PASSWORD`` in a script or asked for at a terminal. Without ``--as``, the one
proven identity acts (none: at a terminal, the username is asked for too). Anything else is
refused in one line naming ``cxdesk login``.

The session file (``sessions.json`` in the user's state dir) holds each session's secret; it is
created 0600 in a 0700 folder whatever the umask, and rewritten whole through a private
temporary file.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import typer
from sqlalchemy import Engine, inspect
from sqlmodel import select

from cxdesk import locations
from cxdesk.errors import DeskError, PermissionDenied
from cxdesk.i18n import _
from cxdesk.store import credentials
from cxdesk.store.db import read_session
from cxdesk.store.logins import check_password, login_source
from cxdesk.store.models import LoginFailure, Role, User


@dataclass(frozen=True)
class StoredSession:
    """One line of the session file."""

    desk: str
    user: str
    secret: str
    expires_at: str


@dataclass(frozen=True)
class Proof:
    user: User
    how: str
    """How it was proven, for ``whoami``: "session until ...", "CXDESK_TOKEN 'ci'"."""


def desk_key(engine: Engine) -> str:
    """Which desk a session belongs to: its database URL without the password."""
    return engine.url.render_as_string(hide_password=True)


# -- the session file -------------------------------------------------------------------------


def read_sessions() -> list[StoredSession]:
    path = locations.sessions_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [StoredSession(**entry) for entry in data["sessions"]]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        raise DeskError(
            _("The session file {path} is damaged ({exc}): delete it and log in").format(
                path=path, exc=exc
            )
        ) from None


def write_sessions(entries: list[StoredSession]) -> Path:
    """Replace the session file (0600, in a 0700 folder) with ``entries``."""
    path = locations.sessions_file()
    data = json.dumps({"sessions": [entry.__dict__ for entry in entries]}, indent=1)
    locations.make_owner_only([locations.make_private_folder(path.parent)])  # an old one too
    locations.write_private_file(path, data.encode())
    return path


def desk_sessions(engine: Engine) -> list[StoredSession]:
    desk = desk_key(engine)
    return [entry for entry in read_sessions() if entry.desk == desk]


# -- proofs -----------------------------------------------------------------------------------


def _detached(session: object, user: User) -> User:
    session.expunge(user)  # type: ignore[attr-defined]
    return user


def proven_identities(engine: Engine) -> tuple[dict[str, Proof], dict[str, str]]:
    """The users proven by CXDESK_TOKEN and live sessions, and why other sessions prove nobody.

    A token that proves nobody (revoked, unknown) refuses the command: it was set on purpose.
    """
    proofs: dict[str, Proof] = {}
    problems: dict[str, str] = {}
    token = os.environ.get("CXDESK_TOKEN")
    with read_session(engine) as session:
        if token:
            user, name = credentials.token_user(session, token.strip())
            proofs[user.username] = Proof(
                _detached(session, user), _("CXDESK_TOKEN {name!r}").format(name=name)
            )
        for entry in desk_sessions(engine):
            if entry.user in proofs:
                continue
            try:
                user = credentials.session_user(session, entry.secret, entry.user)
            except credentials.ProofRefused as refused:
                problems[entry.user] = str(refused)
                continue
            until = datetime.fromisoformat(entry.expires_at).strftime("%Y-%m-%d %H:%M UTC")
            proofs[user.username] = Proof(
                _detached(session, user), _("session until {until}").format(until=until)
            )
    return proofs, problems


def login_password(prompt: str) -> str | None:
    """The acting user's password: CXDESK_LOGIN_PASSWORD, else asked for at a terminal."""
    password = os.environ.get("CXDESK_LOGIN_PASSWORD")
    if password is not None:
        return password
    if sys.stdin.isatty():
        answer: str = typer.prompt(prompt, hide_input=True)
        return answer
    return None


_kept_proofs: dict[tuple[str, str], User | DeskError] | None = None
"""Inside ``proofs_kept``: each password proof (or refusal) by desk and user."""


@contextmanager
def proofs_kept() -> Iterator[None]:
    """Within the block (``cxdesk batch``), a user proven by password is proven once: later
    commands reuse the proof, and a refused password is refused again without another try."""
    global _kept_proofs
    _kept_proofs = {}
    try:
        yield
    finally:
        _kept_proofs = None


def _password_proof(engine: Engine, wanted: str, password: str, *, before_logins: bool) -> User:
    key = (desk_key(engine), wanted)
    kept = _kept_proofs.get(key) if _kept_proofs is not None else None
    if isinstance(kept, DeskError):
        raise kept
    if kept is not None:
        return kept
    source = None if before_logins else login_source()
    try:
        user = check_password(engine, wanted, password, source=source)
    except DeskError as refused:
        if _kept_proofs is not None:
            _kept_proofs[key] = refused
        raise
    if _kept_proofs is not None:
        _kept_proofs[key] = user
    return user


def prove(engine: Engine, as_user: str | None, *, before_logins: bool = False) -> User:
    """The user this command acts as, proven (see the module docstring); detached.

    ``before_logins``: the database predates sessions and tokens (a desk ``db upgrade`` is
    about to bring to this version): only a password proves, without the failure count.
    """
    wanted = as_user or os.environ.get("CXDESK_USER") or None
    proofs, problems = ({}, {}) if before_logins else proven_identities(engine)
    if wanted is None and not proofs and sys.stdin.isatty():
        wanted = typer.prompt(_("Username")).strip() or None
    if wanted is None:
        if len(proofs) == 1:
            return next(iter(proofs.values())).user
        if proofs:
            names = ", ".join(sorted(proofs))
            raise PermissionDenied(
                _("Several users are proven here ({names}): pick one with --as").format(names=names)
            )
        if len(problems) == 1:
            raise PermissionDenied(next(iter(problems.values())))
        raise PermissionDenied(_("log in first: cxdesk login USERNAME"))
    if wanted in proofs:
        return proofs[wanted].user
    password = login_password(_("Password for {username}").format(username=wanted))
    if password is not None:
        return _password_proof(engine, wanted, password, before_logins=before_logins)
    if wanted in problems:
        raise PermissionDenied(problems[wanted])
    raise PermissionDenied(_("log in first: cxdesk login {wanted}").format(wanted=wanted))


def prove_admin(engine: Engine, as_user: str | None, *, before_logins: bool = False) -> User:
    user = prove(engine, as_user, before_logins=before_logins)
    if user.role != Role.admin:
        raise PermissionDenied(
            _("Only an admin can change the desk's set-up ({user} is {role})").format(
                user=user.username, role=user.role
            )
        )
    return user


def desk_has_users(engine: Engine) -> bool:
    if not inspect(engine).has_table("user"):
        return False
    with read_session(engine) as session:
        return session.exec(select(User.id).limit(1)).first() is not None


def prove_setup_admin(engine: Engine, as_user: str | None) -> User | None:
    """An admin's proof for a set-up command; None (nobody to prove) on a desk with no users."""
    if not desk_has_users(engine):
        return None
    before_logins = not inspect(engine).has_table(LoginFailure.__tablename__)
    return prove_admin(engine, as_user, before_logins=before_logins)
