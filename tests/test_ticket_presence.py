"""Presence on a ticket (``store.ticket_presence``) on SQLite and PostgreSQL: heartbeats per
terminal, the others shown (never yourself), stale heartbeats ignored then deleted."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.errors import ValidationFailed
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import TicketViewer, utcnow
from cxdesk.store.ticket_presence import STALE_AFTER, Viewer, beat, leave, viewers_line
from tests.desk import build_small_desk
from tests.test_store_tickets import check_in


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def beat_as(engine: Engine, key: str, who: str, terminal: str, mode: str,
            now: datetime) -> list[Viewer]:  # fmt: skip
    with transaction(engine) as s:
        user_id = get_user(s, who).id
        assert user_id is not None
        return beat(s, key=key, user_id=user_id, terminal=terminal, mode=mode, now=now)


def terminals(engine: Engine) -> set[str]:
    with read_session(engine) as s:
        return set(s.exec(select(TicketViewer.terminal)).all())


def test_others_are_shown_once_each_never_yourself(desk: Engine) -> None:
    key = str(check_in(desk).key)
    now = utcnow()
    assert beat_as(desk, key, "maya", "maya-1", "viewing", now) == []
    assert beat_as(desk, key, "maya", "maya-2", "editing", now) == []  # her own other terminal
    beat_as(desk, key, "omar", "omar-1", "viewing", now)
    seen = beat_as(desk, key, "kenji", "kenji-1", "viewing", now)
    assert seen == [Viewer("Maya", "editing"), Viewer("Omar", "viewing")]
    assert viewers_line(seen) == "Maya is editing · Omar is viewing"
    assert beat_as(desk, key, "omar", "omar-1", "viewing", now) == [
        Viewer("Maya", "editing"), Viewer("Kenji", "viewing")
    ]  # fmt: skip


def test_a_stale_heartbeat_is_ignored_then_deleted_and_leave_is_at_once(desk: Engine) -> None:
    key = str(check_in(desk).key)
    start = utcnow()
    beat_as(desk, key, "omar", "omar-1", "viewing", start)
    at_limit = start + STALE_AFTER
    assert beat_as(desk, key, "maya", "maya-1", "viewing", at_limit) == [Viewer("Omar", "viewing")]
    later = at_limit + timedelta(seconds=1)
    assert beat_as(desk, key, "maya", "maya-1", "viewing", later) == []
    assert terminals(desk) == {"maya-1"}  # omar's row went with that beat
    with transaction(desk) as s:
        leave(s, key=key, terminal="maya-1")
    assert terminals(desk) == set()


def test_an_unknown_mode_is_refused_and_an_unknown_ticket_shows_nobody(desk: Engine) -> None:
    key = str(check_in(desk).key)
    with pytest.raises(ValidationFailed, match="mode"):
        beat_as(desk, key, "maya", "maya-1", "typing", utcnow())
    assert beat_as(desk, "EXP-999", "maya", "maya-1", "viewing", utcnow()) == []
    assert terminals(desk) == set()
