"""The statements a read runs, heard through ``before_cursor_execute`` (what the driver is
handed: ``store.prepared``'s statements too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlmodel import Session

from cxdesk.store.db import read_session

Read = TypeVar("Read")


def statements_of(
    engine: Engine, read: Callable[[Session], Read]
) -> tuple[Read, list[tuple[str, Any]]]:
    """``read`` run in a read session of ``engine``: what it returned, and each statement it
    ran with its parameters, in order."""
    run: list[tuple[str, Any]] = []

    def listen(*args: Any) -> None:
        run.append((str(args[2]), args[3]))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        with read_session(engine) as session:
            result = read(session)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return result, run


def selects(statements: list[tuple[str, Any]]) -> int:
    """How many of ``statements`` are SELECTs."""
    return len([text for text, _ in statements if text.lstrip().upper().startswith("SELECT")])
