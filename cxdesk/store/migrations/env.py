"""Alembic environment for cxdesk: run by ``cxdesk.store.migrate``, never with an alembic.ini.

The connection comes from ``config.attributes["connection"]`` (an engine from
``cxdesk.store.db.make_engine``, already inside the migration's transaction). Without one, the
URL in the ``sqlalchemy.url`` option is opened with ``make_engine``. Logging is not configured
here: the application owns it.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, String
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from cxdesk.store import models  # noqa: F401  (registers every table on SQLModel.metadata)
from cxdesk.store.db import make_engine
from cxdesk.store.migrate import migration_connection

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render SQLModel's column types as the plain SQLAlchemy types they stand for.

    Revisions then import only ``sqlalchemy``; the database sees the same DDL either way.
    """
    if type_ == "type" and isinstance(obj, AutoString):
        length = cast(String, obj.impl_instance).length
        return f"sa.String(length={length})" if length is not None else "sa.String()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure_options() -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        # SQLite can alter little in place: emit batch (copy and move) operations. On
        # PostgreSQL the batch block turns into plain ALTER statements.
        "render_as_batch": True,
        "compare_type": True,
        "compare_server_default": True,
        "render_item": render_item,
    }


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, **configure_options())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "cxdesk migrations need config.attributes['connection'] or sqlalchemy.url"
        )
    engine = make_engine(url)
    try:
        with migration_connection(engine) as connection:
            run_with(connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    """``--sql`` mode: write the SQL for a DBA instead of running it (PostgreSQL only)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **configure_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
