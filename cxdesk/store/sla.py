"""Service levels: what a ticket's SLA looks like now, from its own columns.

A policy (``SlaPolicy``) gives a ticket up to three targets, each a due time in desk hours:
the first response (the first pull or the first reply), the next response (after each customer
message) and the resolution. The due and warning times are written on the ticket when a clock
starts and moved out when a paused ticket resumes, so reading the state of a ticket needs no
calendar and no query: ``sla_view(ticket, now)``, for the screens, ``ticket show --json``,
the exports and the worker that raises ``sla.warning`` and ``sla.breached``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cxdesk.store.models import Ticket

SLA_TARGETS = ("first_response", "next_response", "resolution")
TARGET_WORDS = {
    "first_response": "first response",
    "next_response": "next response",
    "resolution": "resolution",
}


class SlaState(StrEnum):
    on_track = "on_track"
    warning = "warning"
    breached = "breached"
    met = "met"
    paused = "paused"


STATE_WORDS = {
    SlaState.on_track: "on track",
    SlaState.warning: "warning",
    SlaState.breached: "breached",
    SlaState.met: "met",
    SlaState.paused: "paused",
}
STATE_RANK = {
    SlaState.breached: 0,
    SlaState.warning: 1,
    SlaState.paused: 2,
    SlaState.on_track: 3,
    SlaState.met: 4,
}
"""Worst first: a ticket's state is the worst of its targets' (a target met late is breached)."""


@dataclass(frozen=True)
class TargetState:
    target: str
    state: SlaState
    due_at: datetime
    warn_at: datetime | None
    done_at: datetime | None
    since: datetime
    """When this target's clock started (the unique key of its ``sla_alert`` rows)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "due_at": _iso(self.due_at),
            "warn_at": _iso(self.warn_at),
            "done_at": _iso(self.done_at),
            "since": _iso(self.since),
        }


@dataclass(frozen=True)
class SlaView:
    policy_id: int
    state: SlaState
    due_at: datetime | None
    """The nearest due time of the targets still running (None: none is)."""
    paused_since: datetime | None
    targets: tuple[TargetState, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "state": str(self.state),
            "due_at": _iso(self.due_at),
            "paused_since": _iso(self.paused_since),
            "targets": {t.target: t.as_dict() for t in self.targets},
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _aware(value).isoformat()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _target_columns(
    ticket: Ticket, target: str
) -> tuple[datetime | None, datetime | None, datetime | None, datetime | None]:
    """(due, warn, done, since) of one target, from the ticket's columns."""
    if target == "first_response":
        return (
            ticket.first_response_due_at,
            ticket.first_response_warn_at,
            ticket.first_responded_at,
            ticket.created_at,
        )
    if target == "next_response":
        return (
            ticket.next_response_due_at,
            ticket.next_response_warn_at,
            ticket.next_responded_at,
            ticket.next_response_since,
        )
    resolution = ticket.resolution_due_at, ticket.resolution_warn_at, ticket.resolved_at
    return (*resolution, ticket.created_at)


def target_state(
    due: datetime, warn: datetime | None, done: datetime | None, paused: datetime | None,
    now: datetime,
) -> SlaState:  # fmt: skip
    """One target's state: met or breached once done; while paused, breached only if it was
    already due when the pause began; else breached, warning or on track by ``now``."""
    due = _aware(due)
    if done is not None:
        return SlaState.met if _aware(done) <= due else SlaState.breached
    if paused is not None:
        return SlaState.breached if due <= _aware(paused) else SlaState.paused
    if now >= due:
        return SlaState.breached
    if warn is not None and now >= _aware(warn):
        return SlaState.warning
    return SlaState.on_track


def sla_view(ticket: Ticket, now: datetime) -> SlaView | None:
    """The ticket's SLA now; None when no policy applies to it (or it sets no target)."""
    if ticket.sla_policy_id is None:
        return None
    targets: list[TargetState] = []
    for target in SLA_TARGETS:
        due, warn, done, since = _target_columns(ticket, target)
        if due is None or since is None:
            continue
        state = target_state(due, warn, done, ticket.sla_paused_at, now)
        targets.append(
            TargetState(
                target,
                state,
                _aware(due),
                warn and _aware(warn),
                done and _aware(done),
                _aware(since),
            )  # fmt: skip
        )
    if not targets:
        return None
    running = [t.due_at for t in targets if t.done_at is None]
    return SlaView(
        policy_id=ticket.sla_policy_id,
        state=min((t.state for t in targets), key=STATE_RANK.__getitem__),
        due_at=min(running) if running else None,
        paused_since=ticket.sla_paused_at and _aware(ticket.sla_paused_at),
        targets=tuple(targets),
    )
