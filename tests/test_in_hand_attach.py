"""``in_hand.written``'s direct attach: the object and the session
end as ``make_transient_to_detached`` + ``session.add`` leave them, for a row changed before it
is written (as ``create_ticket``'s ticket: its id and key assigned), in a session that has not
begun, and through the rollback and commit after it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, inspect
from sqlmodel import Session

from cxdesk.store import in_hand
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import Team

AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def _state(session: Session, row: Any) -> dict[str, Any]:
    """Everything of the object's state and of the session about it the two calls set."""
    state = inspect(row)
    transaction = session._transaction
    return {
        "key": state.key,
        "persistent": state.persistent,
        "modified": state.modified,
        "expired": state.expired,
        "committed": dict(state.committed_state),
        "expired_attributes": set(state.expired_attributes),
        "unloaded": set(state.unloaded),
        "strong": state._strong_obj is row,
        "orphaned": state._orphaned_outside_of_session,
        "mapped": session.identity_map.get(state.key) is row if state.key else None,
        "in_modified": state in session.identity_map._modified,
        "session": state.session_id == session.hash_key,
        "begun": transaction is not None,
        "dirty": row in session.dirty,
        "new": row in session.new,
        "in_hand": any(kept is row for kept in session.info.get(in_hand.IN_HAND_KEY, [])),
        "fields": sorted(row.__dict__.keys() - {"_sa_instance_state"}),
        "fields_set": set(row.__pydantic_fields_set__),
    }


def _team_row(engine: Engine, name: str) -> int:
    with Session(engine) as other:
        team = Team(name=name, created_at=AT)
        other.add(team)
        other.commit()
        assert team.id is not None
        return team.id


def _changed(team_id: int, name: str) -> Team:
    """A new object of a written row, its id and name assigned (noted as changes)."""
    row = in_hand.new_row(Team, {"name": "?", "created_at": AT})
    row.id = team_id
    row.name = name
    assert inspect(row).modified
    return row


@pytest.mark.parametrize("expire_on_commit", [False, True])
def test_a_changed_row_written_in_a_session_not_begun_is_attached_as_by_the_two_calls(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, expire_on_commit: bool
) -> None:
    upgrade(engine)
    quick_id, slow_id = _team_row(engine, "Quick"), _team_row(engine, "Slow")
    slowly = in_hand._written_slowly
    took: list[Any] = []
    monkeypatch.setattr(in_hand, "_written_slowly", lambda s, r: took.append(r) or slowly(s, r))
    seen: dict[str, list[dict[str, Any]]] = {"quick": [], "slow": []}
    for name, team_id in (("quick", quick_id), ("slow", slow_id)):
        with Session(engine, expire_on_commit=expire_on_commit) as session:
            assert session._transaction is None
            row = _changed(team_id, name)
            if name == "quick":
                in_hand.written(session, row)
            else:
                slowly(session, row)
            seen[name].append(_state(session, row))
            row.name = name + "!"
            seen[name].append(_state(session, row))
            session.rollback()
            seen[name].append(_state(session, row))
            row.name = name + "?"
            session.commit()
            seen[name].append(_state(session, row))
    assert took == []  # the quick one went the direct way
    for quick, slow in zip(seen["quick"], seen["slow"], strict=True):
        quick["key"], slow["key"] = quick["key"][0], slow["key"][0]  # ids differ
        assert {k: v for k, v in quick.items() if k not in ("committed", "fields_set")} == {
            k: v for k, v in slow.items() if k not in ("committed", "fields_set")
        }
        assert quick["committed"].keys() == slow["committed"].keys()
        assert quick["fields_set"] == slow["fields_set"]
