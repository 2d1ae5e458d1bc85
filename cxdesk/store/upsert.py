"""The ``INSERT`` a dialect writes ``ON CONFLICT`` with, importing only that dialect's module:
``sqlalchemy.dialects.postgresql`` loads every PostgreSQL driver's dialect (asyncpg, pg8000,
psycopg...), which a desk on SQLite never needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def dialect_insert(dialect_name: str) -> Callable[..., Any]:
    """``insert`` of PostgreSQL's dialect or SQLite's (both have ``on_conflict_do_nothing`` and
    ``on_conflict_do_update``) for a bind whose dialect is ``dialect_name``."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
