"""Schema migrations: Alembic, configured in code, with the revisions shipped in the package.

``upgrade(engine)`` brings any database (empty, or made by an older cxdesk) to the schema the
models describe. No ``alembic.ini`` is read and logging is left alone. Revisions live in
``cxdesk/store/migrations/versions``; add one with ``scripts/new-migration`` (see the README
there): a revision that has landed is never edited.

Alembic is imported only to migrate or compare (``upgrade``, ``schema_drift``): the check every
command makes (``current_revision`` against ``head_revision``) reads the ``alembic_version``
table and the revision files' names, so a command that only uses the desk never imports it.

Every upgrade runs in one transaction: it applies completely or not at all.

- SQLite: the transaction is ``BEGIN IMMEDIATE`` (see ``db.py``), so two processes upgrading
  at once take turns. Foreign keys are switched off for the duration (a batch migration
  rebuilds a table by copy, drop and rename, which enforced foreign keys would refuse or
  cascade) and ``PRAGMA foreign_key_check`` must be clean before the commit.
- PostgreSQL: a transaction-level advisory lock makes concurrent upgrades take turns too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import OperationalError

from cxdesk.errors import DeskError
from cxdesk.i18n import _, ngettext
from cxdesk.store.db import READ_ONLY_OPTION, is_sqlite
from cxdesk.store.lean import head_revision as head_revision  # read without SQLAlchemy too

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
"""The Alembic script folder (``env.py``, ``versions/``) inside the installed package."""

VERSION_TABLE = "alembic_version"
"""Alembic's record of the revision a database is at (its default name)."""

# pg_advisory_xact_lock key serializing upgrades: the bytes of "cxdesk" as a number.
_PG_LOCK_KEY = 0x637864657368


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for the packaged scripts; ``env.py`` migrates ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    # New revisions are named NNNN_<slug>.py (see scripts/new-migration). "%%" escapes "%".
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for a database never migrated (read from
    the ``alembic_version`` table Alembic keeps, without importing Alembic)."""
    with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    if len(versions) > 1:
        heads = sorted(version for (version,) in versions)
        raise DeskError(
            _("The database is at {count} revisions, expected one: {heads}").format(
                count=len(versions), heads=heads
            )
        )
    return versions[0][0] if versions else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (default: the newest). Running it again is a no-op.

    Raises ``DeskError`` if the database is at a revision this code does not know (it was
    migrated by a newer cxdesk) or if ``revision`` is not a known revision.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revisions(revision)
    except CommandError as exc:
        raise DeskError(
            _("Unknown schema revision {revision!r}").format(revision=revision)
        ) from exc
    try:
        with migration_connection(engine) as connection:
            _check_known(script, MigrationContext.configure(connection).get_current_heads())
            command.upgrade(alembic_config(connection), revision)
    except CommandError as exc:  # e.g. a target below the current revision
        raise DeskError(
            _("Cannot upgrade to {revision!r}: {reason}").format(
                revision=revision, reason=_first_line(exc)
            )
        ) from exc
    except OperationalError as exc:
        raise DeskError(
            _("Database error while migrating: {reason}").format(
                reason=_first_line(exc.orig or exc)
            )
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or ["unknown error"])[0]


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside the one transaction a migration runs in (commit on success).

    ``env.py`` uses it too when Alembic runs without a connection handed in.
    """
    sqlite = is_sqlite(engine)
    with engine.connect() as connection:
        if sqlite:
            # Must happen outside a transaction: SQLite ignores this pragma inside one.
            _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
                    )
                yield connection
                if sqlite:
                    _check_sqlite_foreign_keys(connection)
        finally:
            if sqlite:
                _restore_sqlite_foreign_keys(connection)


def schema_drift(engine: Engine) -> list[Any]:
    """Differences between the live database and the models (empty when they match).

    Each item is an Alembic autogenerate diff tuple such as ``("add_column", ...)``.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    from cxdesk.store import models  # noqa: F401  (registers every table on SQLModel.metadata)

    with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, SQLModel.metadata))


def _check_known(script: ScriptDirectory, current: tuple[str, ...]) -> None:
    from alembic.util.exc import CommandError

    for revision in current:
        try:
            known = script.get_revision(revision)
        except CommandError:
            known = None
        if known is None:
            raise DeskError(
                _(
                    "The database schema is at revision {revision!r}, which this version of "
                    "cxdesk does not know: it was upgraded by a newer cxdesk; install that version"
                ).format(revision=revision)
            )


def _sqlite_pragma(connection: Connection, statement: str) -> list[Any]:
    """Run a pragma on the driver connection, outside SQLAlchemy's transaction handling.

    The cursor is drained and closed: a statement left open would keep a lock.
    """
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        return list(cursor.execute(statement).fetchall())
    finally:
        cursor.close()


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if violations:
        table, rowid, parent, _fk = violations[0]
        raise DeskError(
            ngettext(
                "Migration left {count} broken foreign key, e.g. {table} row {row} -> {parent}; "
                "nothing was changed",
                "Migration left {count} broken foreign keys, e.g. {table} row {row} -> {parent}; "
                "nothing was changed",
                len(violations),
            ).format(count=len(violations), table=table, row=rowid, parent=parent)
        )


def _restore_sqlite_foreign_keys(connection: Connection) -> None:
    """Switch foreign keys back on; a pooled connection must never be left without them."""
    try:
        if connection.in_transaction():
            connection.rollback()
        _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")
        if _sqlite_pragma(connection, "PRAGMA foreign_keys") != [(1,)]:
            connection.invalidate()
    except Exception:
        connection.invalidate()
