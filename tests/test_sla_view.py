"""The state of a ticket's SLA from its own columns (``store.sla.sla_view``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cxdesk.store.models import Ticket
from cxdesk.store.sla import SlaState, sla_view

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def ticket(**columns: Any) -> Ticket:
    values: dict[str, Any] = {
        "title": "t", "status": "new", "origin_team_id": 1, "team_id": 1, "created_at": T0,
        "sla_policy_id": 1,
        "first_response_due_at": T0 + timedelta(minutes=10),
        "first_response_warn_at": T0 + timedelta(minutes=7, seconds=30),
        "resolution_due_at": T0 + timedelta(minutes=45),
        "resolution_warn_at": T0 + timedelta(minutes=34),
    }  # fmt: skip
    values.update(columns)
    return Ticket(**values)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_no_policy_no_view() -> None:
    assert sla_view(ticket(sla_policy_id=None), at(0)) is None


def test_on_track_then_warning_then_breached_by_the_nearest_target() -> None:
    states = [sla_view(ticket(), at(m)) for m in (0, 8, 11)]
    assert [v.state if v else None for v in states] == [
        SlaState.on_track,
        SlaState.warning,
        SlaState.breached,
    ]
    view = states[0]
    assert view is not None and view.due_at == at(10)


def test_met_target_leaves_the_next_one_running() -> None:
    view = sla_view(ticket(first_responded_at=at(5)), at(20))
    assert view is not None
    assert view.state == SlaState.on_track and view.due_at == at(45)
    assert view.as_dict()["targets"]["first_response"]["state"] == "met"


def test_a_target_met_late_stays_breached() -> None:
    view = sla_view(ticket(first_responded_at=at(12), resolved_at=at(20)), at(30))
    assert view is not None and view.state == SlaState.breached and view.due_at is None


def test_paused_stops_the_clock_unless_already_due() -> None:
    paused = sla_view(ticket(sla_paused_at=at(8)), at(500))
    assert paused is not None and paused.state == SlaState.paused
    late = sla_view(ticket(sla_paused_at=at(11)), at(500))
    assert late is not None and late.state == SlaState.breached


def test_resolving_ends_the_responses_still_running() -> None:
    view = sla_view(ticket(resolved_at=at(8)), at(500))
    assert view is not None and view.state == SlaState.met and view.due_at is None
    late = sla_view(ticket(resolved_at=at(20)), at(500))
    assert late is not None
    assert late.as_dict()["targets"]["first_response"]["state"] == "breached"
    assert late.as_dict()["targets"]["resolution"]["state"] == "met"
