"""Proofs of identity a command can show instead of a password: login sessions and API tokens.

Both are random secrets held by the user (a session in their session file, a token in
``CXDESK_TOKEN``); the database keeps only each secret's SHA-256, so a copy of the database
proves nobody, and a desk on PostgreSQL accepts them from any machine. A session ends at
``logout`` or ``SESSION_HOURS`` after login; a token lasts until an admin revokes it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from cxdesk.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cxdesk.i18n import _
from cxdesk.store.directory import get_user, require_admin
from cxdesk.store.models import ApiToken, LoginSession, User, utcnow

SESSION_HOURS = 12
TOKEN_PREFIX = "cxd_"


class ProofRefused(PermissionDenied):
    """A session or token that proves nobody (ended, expired, revoked, unknown, deactivated)."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _active(session: Session, user_id: int, refusal: str) -> User:
    """The user ``user_id`` if still active, else ``refusal`` (a deactivated user's proof)."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise ProofRefused(refusal)
    return user


# -- sessions ---------------------------------------------------------------------------------


def start_session(session: Session, *, user: User) -> tuple[str, datetime]:
    """A new session for ``user`` (whose password was just checked): its secret and end."""
    assert user.id is not None
    now = utcnow()
    session.connection().execute(  # this user's sessions that ended by themselves
        delete(LoginSession).where(
            col(LoginSession.user_id) == user.id, col(LoginSession.expires_at) <= now
        )
    )
    secret = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=SESSION_HOURS)
    session.add(LoginSession(user_id=user.id, secret_hash=_digest(secret), expires_at=expires))
    session.flush()
    return secret, expires


def end_session(session: Session, secret: str) -> None:
    session.connection().execute(
        delete(LoginSession).where(col(LoginSession.secret_hash) == _digest(secret))
    )


def session_user(session: Session, secret: str, username: str) -> User:
    """The user a session secret proves; ``ProofRefused`` naming ``cxdesk login`` if none."""
    row = session.exec(
        select(LoginSession).where(LoginSession.secret_hash == _digest(secret))
    ).first()
    if row is None:
        raise ProofRefused(
            _("{username}'s session has ended: cxdesk login {username}").format(username=username)
        )
    if row.expires_at <= utcnow():
        raise ProofRefused(
            _("{username}'s session has expired: cxdesk login {username}").format(username=username)
        )
    refusal = _("The session of {username} belongs to a deactivated user")
    return _active(session, row.user_id, refusal.format(username=username))


# -- API tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRow:
    name: str
    user: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


def create_token(session: Session, *, actor: User | None, name: str, username: str) -> str:
    """A new token for ``username`` (admins only); the secret, which is never shown again."""
    require_admin(actor)
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise ValidationFailed({"name": _("must be 1-100 printable characters")})
    user = get_user(session, username)
    if not user.active:
        raise Conflict(_("User {username!r} is deactivated").format(username=username))
    if session.exec(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise Conflict(
            _("A token named {name!r} exists already (names stay after a revoke)").format(name=name)
        )
    assert user.id is not None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            name=name,
            user_id=user.id,
            secret_hash=_digest(secret),
            created_by_id=actor.id if actor else None,
        )
    )
    session.flush()
    return secret


def token_user(session: Session, secret: str) -> tuple[User, str]:
    """The user a token proves and the token's name; ``ProofRefused`` if it proves nobody."""
    row = session.exec(select(ApiToken).where(ApiToken.secret_hash == _digest(secret))).first()
    if row is None:
        raise ProofRefused(_("CXDESK_TOKEN is not a token of this desk"))
    if row.revoked_at is not None:
        raise ProofRefused(_("CXDESK_TOKEN (token {name!r}) was revoked").format(name=row.name))
    refusal = _("Token {name!r} belongs to a deactivated user").format(name=row.name)
    return _active(session, row.user_id, refusal), row.name


def revoke_token(session: Session, *, actor: User | None, name: str) -> None:
    require_admin(actor)
    row = session.exec(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None:
        raise NotFound(_("No token named {name!r}").format(name=name))
    if row.revoked_at is not None:
        raise Conflict(_("Token {name!r} was revoked already").format(name=name))
    row.revoked_at = utcnow()
    session.add(row)


def list_tokens(session: Session) -> Sequence[TokenRow]:
    names = {u.id: u.username for u in session.exec(select(User)).all()}
    rows = session.exec(select(ApiToken).order_by(col(ApiToken.name))).all()
    return [
        TokenRow(
            name=r.name,
            user=names.get(r.user_id, "?"),
            created_by=names.get(r.created_by_id, "") if r.created_by_id else "",
            created_at=r.created_at,
            revoked_at=r.revoked_at,
        )
        for r in rows
    ]
