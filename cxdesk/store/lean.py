"""The desk read without SQLAlchemy: what ``cxdesk run`` needs from the Enter of a login to the
queues screen's first fill, through the DB-API driver (sqlite3; psycopg on PostgreSQL).

SQLAlchemy, SQLModel and the models take about a second to import; a Textual app paints in a
quarter of one. So the desk's login and its experts' home screen read their first rows here
(``LeanDesk``), while the full store loads in a thread once the queues are drawn; the columns
that need it (the estimate, who is available, the SLA) and every action wait for it.

What is read here is read by the store too, and must read the same rows: the user a login
checks (``store.logins.check_password``), the desk's language and zone
(``store.user_language.spoken_language``, ``store.directory.desk_zone``), every queue with its
waiting count and oldest wait (``store.tickets.queue_overview``), the user's teams
(``store.directory.user_teams``) and their open tickets (the queues screen's read).
``tests/test_lean_reads.py`` holds each to the store's on a seeded desk, SQLite and PostgreSQL.

Only reads: whatever writes (a failed login counted, presence) is the store's. A desk this
module cannot read (another URL form, no schema, an old one, a driver error) is left to the
store, which says what is wrong as it always did (``open_lean`` gives None). A driver error
in a read is the store's own ``DeskError`` (``driver_error``, raised from it: the database
away is ``is_unreachable`` as the store's is), and its caller falls back to the store.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cxdesk.errors import DeskError
from cxdesk.i18n import DESK_LANGUAGE_SETTING, _, language_code

VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"
"""The packaged migration scripts (``store.migrate``)."""
BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite connection waits for another's lock (``store.db``'s too)."""
MINE_READ = 200
"""The queues screen reads the user's newest tickets up to this many (``list_tickets``'s
default), and shows the open ones among them."""
KEY_LENGTH = 64
"""User.username's length: a longer name is unknown all the same (failed logins' key)."""
HEARTBEAT = 30.0
"""How often an open desk beats its presence (``store.presence``): four beats fit in the
default timeout, so a busy machine missing one or two does not make its expert away."""
TIME_ZONE_SETTING = "time_zone"
RESOLVED = "resolved"  # store.models.StatusCategory's values
OPEN = "open"

LOGIN_FAILURE_SQL = "SELECT 1 FROM login_failure WHERE username = ? AND source = ?"
USER_SQL = (
    'SELECT id, username, name, role, password_hash, active, language FROM "user" '
    "WHERE username = ?"
)
SETTING_SQL = "SELECT value FROM desk_setting WHERE name = ?"
QUEUES_SQL = (
    "SELECT queue.name, team.name, queue.ordering, waiting.waiting, waiting.oldest, "
    "queue.assign FROM queue JOIN team ON team.id = queue.team_id "
    "LEFT OUTER JOIN (SELECT ticket.team_id AS team_id, count(*) AS waiting, "
    "min(ticket.created_at) AS oldest FROM ticket JOIN status ON status.name = ticket.status "
    "WHERE ticket.owner_id IS NULL AND status.category = 'open' GROUP BY ticket.team_id) "
    "AS waiting ON waiting.team_id = queue.team_id ORDER BY queue.name"
)
MY_TEAMS_SQL = (
    "SELECT team.name FROM team JOIN membership ON membership.team_id = team.id "
    "WHERE membership.user_id = ? ORDER BY team.name"
)
STATUSES_SQL = "SELECT name, category FROM status"
TEAMS_SQL = "SELECT id, name FROM team"
MINE_SQL = (
    "SELECT key, title, status, priority, team_id, updated_at FROM ticket WHERE owner_id = ? "
    f"ORDER BY created_at DESC, id DESC LIMIT {MINE_READ}"
)


_SQLITE_PASSING = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
    "database or disk is full",
)
"""SQLite's messages for a state that passes by itself (a lock held past the busy timeout,
the file briefly away or full), as opposed to "no such table" and the like."""


def driver_error(exc: BaseException) -> DeskError:
    """Turn a driver failure a user can act on (the DBAPI's OperationalError, or SQLAlchemy's
    wrapping it) into one clear line."""
    text = str(exc)
    first_line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    if "database is locked" in first_line:
        return DeskError(
            _(
                "The desk database is busy: another program held it locked for over "
                "{seconds} s; nothing was changed, try again"
            ).format(seconds=f"{BUSY_TIMEOUT_MS / 1000:g}")
        )
    if "readonly database" in first_line:
        return DeskError(
            _(
                "The desk database is read-only (check the file's and its folder's "
                "permissions); nothing was changed"
            )
        )
    return DeskError(_("Database error: {reason}").format(reason=first_line))


def errors_behind(error: BaseException) -> Iterator[BaseException]:
    """``error`` and each error it was raised from (or during), innermost last."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def driver_away(error: BaseException) -> bool | None:
    """One DB-API error's say on whether the database cannot be used for now (the server
    down, the connection lost, a SQLite lock held past the busy timeout): True or False for a
    driver's error, None for any other (``store.db.is_unreachable`` asks SQLAlchemy's too)."""
    if isinstance(error, sqlite3.OperationalError):
        return any(text in str(error).lower() for text in _SQLITE_PASSING)
    psycopg = sys.modules.get("psycopg")  # loaded only by a PostgreSQL desk
    if psycopg is not None and isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    return None


def driver_unreachable(error: BaseException) -> bool:
    """``store.db.is_unreachable`` for a desk read lean (no SQLAlchemy loaded)."""
    return any(driver_away(found) for found in errors_behind(error))


def _driver_errors() -> tuple[type[BaseException], ...]:
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error,) if psycopg is None else (sqlite3.Error, psycopg.Error)


def head_revision() -> str:
    """The newest schema revision this code knows (``store.migrate.head_revision``): the
    highest number among the revision files, each named ``NNNN_<slug>.py``."""
    return max(name.name.partition("_")[0] for name in VERSIONS.glob("[0-9]*_*.py"))


def aware(value: datetime | str | None) -> datetime | None:
    """A stored time as aware UTC (SQLite hands back aggregates as text, without a zone;
    psycopg a time in the session's zone, the server's ``TimeZone``)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def updated_at(value: datetime | str) -> datetime:
    """A time column as the store's models hand it back (aware UTC)."""
    found = aware(value)
    assert found is not None
    return found


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not a time zone (one line), or None when it is one."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"{name!r} is not a time zone: use an IANA name such as Europe/Paris or UTC"
    return None


def zone_named(setting: str) -> ZoneInfo:
    """The desk's zone from its ``time_zone`` setting: UTC when unset or not a zone."""
    name = setting.strip() or "UTC"
    return ZoneInfo("UTC" if zone_problem(name) else name)


def format_wait(since: datetime | None, now: datetime) -> str:
    """How long something has waited: ``7m``, ``1h 05m``; empty when nothing waits."""
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes >= 60:
        # TRANSLATORS: a short duration in a table cell (hours, minutes: "1h 05m").
        return _("{hours}h {minutes}m").format(hours=minutes // 60, minutes=f"{minutes % 60:02d}")
    # TRANSLATORS: a short duration in a table cell, in minutes ("7m").
    return _("{minutes}m").format(minutes=minutes)


def wait_short(minutes: float | None) -> str:
    """An estimate in a narrow column (the queues screen): ``~12m``, ``~1h 05m``, ``<1m``,
    ``unknown``."""
    if minutes is None:
        return _("unknown")
    whole = round(minutes)
    if whole < 1:
        return "<1m"
    return f"~{whole // 60}h {whole % 60:02d}m" if whole >= 60 else f"~{whole}m"


@dataclass(frozen=True)
class QueueStats:
    """A queue as ``store.tickets.queue_overview`` reads it: its team, order, waiting count
    (unowned tickets in an open status) and its oldest waiting ticket's creation."""

    name: str
    team: str
    ordering: str
    waiting: int
    oldest_created: datetime | None
    assign: str = "pull"
    """pull (by hand) or auto (``store.assign``)."""


def queue_stats(row: tuple[Any, ...]) -> QueueStats:
    """One row of ``QUEUES_SQL`` (the store's statement reads the same columns)."""
    name, team, ordering, waiting, oldest, assign = row
    return QueueStats(name, team, ordering, waiting or 0, aware(oldest), assign)


@dataclass
class LoginRow:
    """The user a login reads, as the desk needs them until the store has loaded: then the
    app holds the store's ``User`` instead (same fields)."""

    id: int
    username: str
    name: str
    role: str
    password_hash: str
    active: bool
    language: str | None


def login_source() -> str:
    """Where attempts come from: this OS account on this machine (from the system's user
    database, not from $USER, which a guesser could change between attempts)."""
    try:
        import pwd

        account = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        account = getpass.getuser()
    return f"{account}@{socket.gethostname()}"[:300]


def check_password_lean(
    desk: LeanDesk, username: str, password: str, *, source: str
) -> tuple[str, LoginRow | None]:
    """``store.logins.check_password``'s first attempt from ``source``, read lean: ``("in",
    user)`` for the active user whose password it is, with a hash at the current cost.
    Otherwise what the store must do, with the same argon2 work and the same reads in all:
    ``("wrong", None)``, an unknown user, a deactivated one or a wrong password, checked
    (the store counts it, ``count_failed_login``: every refusal the same work, so neither
    its time nor its statements tell which); ``("rehash", user)``, the right one, checked
    (the store gives a hash at the current cost, ``rehash_after_login``); ``("store",
    None)``, failures counted from ``source``, not checked (``check_password``: its delay,
    its turn). A driver error is the store's ``DeskError`` (``LeanDesk.reading``)."""
    from cxdesk.store.passwords import needs_rehash, verify_nobody, verify_password

    failed, user = desk.login(username[:KEY_LENGTH], username, source)
    if failed:
        return "store", None
    if user is None:
        matched = verify_nobody(password)
    else:
        matched = verify_password(user.password_hash, password) and user.active
    if user is None or not matched:
        return "wrong", None
    return ("rehash" if needs_rehash(user.password_hash) else "in"), user


@dataclass(frozen=True)
class FirstFill:
    """The queues screen's first rows: every queue, the user's teams, their open tickets."""

    queues: list[QueueStats]
    my_teams: frozenset[str]
    my_tickets: list[dict[str, object]] = field(default_factory=list)
    """As ``store.tickets.tickets_to_dicts`` gives them, the fields the screen shows."""


class LeanDesk:
    """A desk database read through its driver; each ``reading`` is one short connection."""

    def __init__(self, connect: Callable[[], Any], *, postgres: bool) -> None:
        self._connect = connect
        self.postgres = postgres

    @contextmanager
    def reading(self) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
        """A read-only transaction; yields ``rows(sql, parameters)`` (SQL written with ``?``).
        A driver error is the store's ``DeskError`` (``driver_error``), raised from it."""
        try:
            connection = self._connect()
        except _driver_errors() as error:
            raise driver_error(error) from error
        try:
            if not self.postgres:
                connection.execute("BEGIN")  # deferred: a reader never takes the write lock

            def rows(sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
                if self.postgres:
                    sql = sql.replace("?", "%s")
                return [tuple(row) for row in connection.execute(sql, parameters).fetchall()]

            yield rows
        except _driver_errors() as error:
            raise driver_error(error) from error
        finally:
            try:
                connection.rollback()
                connection.close()
            except _driver_errors():  # the connection lost: nothing to roll back
                pass

    def revision(self) -> str | None:
        """The schema revision the database is at (``store.migrate.current_revision``); None
        when it has no single one (not set up; the store says so)."""
        table = (
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'alembic_version' "
            "AND table_schema = ANY(current_schemas(false))"
            if self.postgres
            else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        )
        with self.reading() as rows:
            if not rows(table):
                return None
            versions = rows("SELECT version_num FROM alembic_version")
        return versions[0][0] if len(versions) == 1 else None

    def login(self, key: str, username: str, source: str | None) -> tuple[bool, LoginRow | None]:
        """Whether ``key`` has failed logins counted from ``source``, and the user
        ``username`` (``check_password``'s two reads)."""
        with self.reading() as rows:
            failed = bool(source) and bool(rows(LOGIN_FAILURE_SQL, (key, source)))
            found = rows(USER_SQL, (username,))
        if not found:
            return failed, None
        id_, name_, name, role, password_hash, active, language = found[0]
        return failed, LoginRow(id_, name_, name, role, password_hash, bool(active), language)

    def speech(self, user: LoginRow) -> tuple[str | None, ZoneInfo]:
        """The language ``user`` is spoken to in and the desk's zone
        (``store.user_language.spoken_language``, ``store.directory.desk_zone``)."""
        with self.reading() as rows:
            desk_language, zone = (
                str(found[0][0]) if (found := rows(SETTING_SQL, (name,))) else ""
                for name in (DESK_LANGUAGE_SETTING, TIME_ZONE_SETTING)
            )
        return language_code(user.language) or language_code(desk_language), zone_named(zone)

    def first_fill(self, user_id: int | None, role: str) -> FirstFill:
        """The queues screen's first rows for the user (a volunteer: no tickets)."""
        with self.reading() as rows:
            queues = [queue_stats(row) for row in rows(QUEUES_SQL)]
            teams = frozenset(name for (name,) in rows(MY_TEAMS_SQL, (user_id,)))
            if role == "volunteer":
                return FirstFill(queues, teams)
            still_open = {name for name, category in rows(STATUSES_SQL) if category != RESOLVED}
            team_names: dict[int, str] = dict(rows(TEAMS_SQL))
            mine = [
                {
                    "key": key,
                    "title": title,
                    "status": status,
                    "priority": priority,
                    "team": team_names.get(team_id),
                    "updated_at": updated_at(updated).isoformat(),
                }
                for key, title, status, priority, team_id, updated in rows(MINE_SQL, (user_id,))
                if status in still_open
            ]
        return FirstFill(queues, teams, mine)


_SQLITE_FILE = re.compile(r"sqlite:///(?P<path>[^?%]+)")
_POSTGRES = re.compile(r"(postgresql|postgres)(\+psycopg)?://(?P<rest>.*)")


def open_lean(url: str) -> LeanDesk | None:
    """The desk at ``url`` read through its driver, if it is set up at the schema this code
    knows; else None (the store opens it and says why not)."""
    desk: LeanDesk | None = None
    if found := _SQLITE_FILE.fullmatch(url):
        path = os.path.expanduser(found["path"])
        if os.path.isfile(path):  # never made here: the store creates a new desk owner-only
            desk = LeanDesk(lambda: _sqlite_connection(path), postgres=False)
    elif found := _POSTGRES.fullmatch(url):
        conninfo = f"postgresql://{found['rest']}"
        desk = LeanDesk(lambda: _postgres_connection(conninfo), postgres=True)
    if desk is None:
        return None
    try:
        at = desk.revision()
    except Exception:  # not a database, unreachable: the store says which
        return None
    return desk if at is not None and at == head_revision() else None


def _sqlite_connection(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return connection


def _postgres_connection(conninfo: str) -> Any:
    import psycopg  # a PostgreSQL desk's driver, loaded on it only

    return psycopg.connect(conninfo)
