"""Checking a password at login, the one way the CLI and the desk's login screen both use.

- An unknown or deactivated username costs the same argon2 check as a real one and gets the
  same answer (``BAD_LOGIN``), so neither the time nor the message tells whether it exists.
- Failed checks are counted per username and source (the OS account on the machine the attempt
  comes from) in the database, so the count holds across processes and terminals: after
  ``FREE_ATTEMPTS`` failures the next attempt is refused, without checking the password, until a
  delay has passed that doubles with each failure (1, 2, 4... up to ``MAX_DELAY_SECONDS``);
  attempts running at once get one password check per delay between them. A successful login
  clears the count.
- A hash made with other argon2 parameters than the current cost's is replaced at a successful
  login (``CXDESK_PASSWORD_HASH_COST``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, update
from sqlmodel import col, select

from cxdesk.errors import PermissionDenied
from cxdesk.i18n import _
from cxdesk.store.db import read_session, transaction
from cxdesk.store.lean import KEY_LENGTH, LoginRow
from cxdesk.store.lean import login_source as login_source  # the lean login's too
from cxdesk.store.models import LoginFailure, User, utcnow
from cxdesk.store.passwords import hash_password, needs_rehash, verify_nobody, verify_password
from cxdesk.store.upsert import dialect_insert

BAD_LOGIN = "Unknown user or wrong password"
FREE_ATTEMPTS = 2
MAX_DELAY_SECONDS = 30.0


class BadLogin(PermissionDenied):
    """Unknown user, wrong password or deactivated user: one answer for all three."""

    def __init__(self, username: str):
        super().__init__(
            _("Unknown user or wrong password ({username!r})").format(username=username)
        )


class LoginThrottled(PermissionDenied):
    """Too many failed attempts for this username from this source: wait ``seconds``."""

    def __init__(self, username: str, seconds: int):
        self.seconds = seconds
        super().__init__(
            _(
                "Too many failed logins for {username!r} from this account: try again in "
                "{seconds} s"
            ).format(username=username, seconds=seconds)
        )


def failure_delay(failures: int) -> float:
    """Seconds before the next attempt is checked after ``failures`` failed ones."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    return min(2.0 ** (failures - FREE_ATTEMPTS), MAX_DELAY_SECONDS)


def check_password(engine: Engine, username: str, password: str, *, source: str | None) -> User:
    """The active user ``username`` if ``password`` is theirs; else ``BadLogin`` (the failure
    counted), or ``LoginThrottled`` while a delay runs.

    Once a username has failed from a source, each attempt first claims its turn in a write
    transaction (counted as a failure until it succeeds), so attempts running at once get one
    password check per delay between them, not one each.

    ``source`` None: no failure count (a database from before it, which ``db upgrade`` is
    about to bring to this version).
    """
    key = username[:KEY_LENGTH]
    with read_session(engine) as session:
        failure = session.get(LoginFailure, (key, source)) if source else None
        if failure is not None:
            _refuse_while_locked(username, failure.locked_until)
        user = session.exec(select(User).where(User.username == username)).first()
    counted = source is not None and failure is not None and _claim_turn(engine, key, source)
    if user is None:
        matched = verify_nobody(password)
    else:
        matched = verify_password(user.password_hash, password) and user.active
    if user is None or not matched:
        if source is not None and not counted:
            _count_failure(engine, key, source)
        raise BadLogin(username)
    if source is not None and (failure is not None or needs_rehash(user.password_hash)):
        _after_success(engine, user, password, cleared=(key, source) if failure else None)
    return user


def count_failed_login(engine: Engine, username: str, *, source: str) -> None:
    """A wrong password, checked already (``store.lean.check_password_lean``) for a username
    with no failures counted from ``source``: counted as ``check_password`` counts it, then
    ``BadLogin``."""
    _count_failure(engine, username[:KEY_LENGTH], source)
    raise BadLogin(username)


def rehash_after_login(engine: Engine, user: User | LoginRow, password: str) -> None:
    """The right password, checked already (``check_password_lean``), of a hash made at
    another cost: a new one at the current cost, as ``check_password`` gives it."""
    _after_success(engine, user, password, cleared=None)


def _refuse_while_locked(username: str, locked_until: datetime) -> None:
    wait = (locked_until - utcnow()).total_seconds()
    if wait > 0:
        raise LoginThrottled(username, max(math.ceil(wait), 1))


def _claim_turn(engine: Engine, key: str, source: str) -> bool:
    """Count this attempt as the next failure before it is checked, if its turn has come;
    ``LoginThrottled`` if another attempt took it first. False: the count was cleared meanwhile
    (a success), so this attempt is a first one."""
    table = LoginFailure.__table__  # type: ignore[attr-defined]
    where = (table.c.username == key, table.c.source == source)
    with transaction(engine) as session:  # the row locked (SQLite: the database) until commit
        row = session.connection().execute(select(table).where(*where).with_for_update()).first()
        if row is None:
            return False
        _refuse_while_locked(key, row.locked_until)
        delay = timedelta(seconds=failure_delay(row.failures + 1))
        session.connection().execute(
            update(table)
            .where(*where)
            .values(failures=row.failures + 1, locked_until=utcnow() + delay)
        )
    return True


def _count_failure(engine: Engine, key: str, source: str) -> None:
    table = LoginFailure.__table__  # type: ignore[attr-defined]
    with transaction(engine) as session:
        insert = dialect_insert(session.get_bind().dialect.name)
        statement = insert(table).values(username=key, source=source, failures=1)
        failures = session.connection().scalar(
            statement.on_conflict_do_update(
                index_elements=["username", "source"],
                set_={"failures": table.c.failures + 1},
            ).returning(table.c.failures)
        )
        delay = timedelta(seconds=failure_delay(int(failures or 1)))
        session.connection().execute(
            update(table)
            .where(table.c.username == key, table.c.source == source)
            .values(locked_until=utcnow() + delay)
        )


def _after_success(
    engine: Engine, user: User | LoginRow, password: str, *, cleared: tuple[str, str] | None
) -> None:
    """Clear the failure count and give the user a hash at the current cost if needed."""
    new_hash = hash_password(password) if needs_rehash(user.password_hash) else None
    with transaction(engine) as session:  # the hash made first: argon2 holds no write lock
        if cleared is not None:
            session.connection().execute(
                delete(LoginFailure).where(
                    col(LoginFailure.username) == cleared[0], col(LoginFailure.source) == cleared[1]
                )
            )
        if new_hash is not None:
            # Only if nobody changed the password meanwhile.
            session.connection().execute(
                update(User)
                .where(col(User.id) == user.id, col(User.password_hash) == user.password_hash)
                .values(password_hash=new_hash)
            )
