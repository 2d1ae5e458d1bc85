"""Giving tickets SLA times directly, for the tests of what reads them (the worker's alerts,
``cxdesk report sla``, the Insights panel), without the policies' arithmetic: a policy row and
the ticket's due, warning and done times as the tests want them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import select

from cxdesk.store.db import transaction
from cxdesk.store.models import SlaPolicy, Ticket

MINUTE = timedelta(minutes=1)


def sla_policy(engine: Engine, name: str = "Standard") -> int:
    """A policy row (first response 10, resolution 45 minutes, warning at 75%); its id."""
    with transaction(engine) as session:
        found = session.exec(select(SlaPolicy).where(SlaPolicy.name == name)).first()
        if found is None:
            found = SlaPolicy(name=name, first_response_minutes=10, resolution_minutes=45)
            session.add(found)
            session.flush()
        assert found.id is not None
        return found.id


def give_sla(
    engine: Engine,
    key: str,
    created: datetime,
    *,
    first_response: float | None = 10,
    resolution: float | None = 45,
    warn_percent: float = 75,
    policy: str = "Standard",
    **columns: Any,
) -> None:
    """Ticket ``key`` created at ``created`` under ``policy`` (made if missing), its first
    response and resolution due so many minutes later (None: not measured), each warning at
    ``warn_percent`` of it; ``columns`` set any other column (``first_responded_at``,
    ``sla_paused_at``, ``next_response_since``...)."""
    values: dict[str, Any] = {"sla_policy_id": sla_policy(engine, policy), "created_at": created}
    for target, minutes in (("first_response", first_response), ("resolution", resolution)):
        # None: not measured (cleared, should the desk's own policy have set it at creation)
        due = None if minutes is None else created + minutes * MINUTE
        warn = None if minutes is None else created + minutes * warn_percent / 100 * MINUTE
        values[f"{target}_due_at"], values[f"{target}_warn_at"] = due, warn
    values.update(columns)
    with transaction(engine) as session:
        session.execute(update(Ticket).where(Ticket.key == key).values(**values))  # type: ignore[arg-type]
