"""``store.prepared``: statements compiled once and run on the driver, inside the session's
transaction, see what the session holds as its own statements do."""

from __future__ import annotations

from sqlalchemy import Engine, bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import col

from cxdesk.store.db import transaction
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import Team
from cxdesk.store.prepared import Prepared

_TEAMS_NAMED = Prepared(
    sa_select(func.count()).select_from(Team).where(col(Team.name) == bindparam("name"))
)


def test_a_prepared_read_sees_the_sessions_pending_changes(engine: Engine) -> None:
    upgrade(engine)
    with transaction(engine) as session:
        session.add(Team(name="Pending"))  # not flushed yet: the read flushes it, as ORM's do
        assert _TEAMS_NAMED.scalar(session, {"name": "Pending"}) == 1
        with session.no_autoflush:  # and keeps the session's rule when told not to
            session.add(Team(name="Later"))
            assert _TEAMS_NAMED.scalar(session, {"name": "Later"}) == 0
        assert _TEAMS_NAMED.scalar(session, {"name": "Later"}) == 1
