"""Presence: whether each expert is available, away or on a break, as the desk counts them.

An expert sets a state (the desk's key, ``cxdesk user status``); the desk (TUI) that set it
beats a heartbeat while it is open (``heartbeat``, every ``HEARTBEAT_SECONDS``), and logging out
sets "away" at once. A desk that dies stops beating: its expert reads as away once the last
heartbeat is older than the desk setting ``presence_timeout_seconds`` (default 120). That is
worked out when presence is read (``effective_state``, ``AVAILABLE_NOW``), never written by a
sweeper, so a dead terminal needs nobody to notice it. A state set from the CLI has no heartbeat
(``heartbeat_at`` None): it holds until changed, or until a desk of the same expert beats again.

An expert with no presence row is away. What reads presence: the wait estimates
(``store.waiting.available_experts``), auto-assignment (``store.assign``), the queues screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from cxdesk.errors import ValidationFailed, must_be_one_of
from cxdesk.store.directory import whole_number_setting
from cxdesk.store.events import record_event
from cxdesk.store.lean import HEARTBEAT
from cxdesk.store.models import Membership, Presence, PresenceState, Team, User, utcnow
from cxdesk.store.tickets import _aware as aware

PRESENCE_EVENT = "user.presence_changed"
"""Logged (no workflow) when a state changes; not for a heartbeat, nor for a timeout."""
TIMEOUT_SETTING = "presence_timeout_seconds"
DEFAULT_TIMEOUT_SECONDS = 120
HEARTBEAT_SECONDS = HEARTBEAT  # an open desk's beat (store.lean: the desk waits it first)
STATES = tuple(state.value for state in PresenceState)
CYCLE = {
    PresenceState.available: PresenceState.break_,
    PresenceState.break_: PresenceState.away,
    PresenceState.away: PresenceState.available,
}
"""The desk's presence key: available -> break -> away -> available."""


def state_words(state: PresenceState) -> str:
    """A state as a sentence says it: "available", "away", "on a break"."""
    return "on a break" if state == PresenceState.break_ else str(state)


@dataclass(frozen=True)
class PresenceView:
    """An expert's presence as the desk counts it now."""

    state: PresenceState
    """What counts: the state set, or away after a missed heartbeat (or with none set)."""
    set_state: PresenceState | None
    """The state last set (None: never set)."""
    since: datetime | None
    heartbeat_at: datetime | None
    timed_out: bool
    """Set to something else, but the desk that set it stopped beating."""

    def line(self) -> str:
        """One line for ``cxdesk user status``."""
        if self.set_state is None:
            return "away (never set)"
        if self.timed_out:
            assert self.heartbeat_at is not None
            return (
                f"away (was {self.set_state}; no heartbeat from the desk since "
                f"{self.heartbeat_at:%Y-%m-%d %H:%M} UTC)"
            )
        assert self.since is not None
        return f"{self.state} (since {self.since:%Y-%m-%d %H:%M} UTC)"


def presence_timeout(session: Session) -> timedelta:
    """How long a desk's presence lasts after its last heartbeat (desk setting
    ``presence_timeout_seconds``, default 120)."""
    seconds = whole_number_setting(session, TIMEOUT_SETTING, DEFAULT_TIMEOUT_SECONDS)
    return timedelta(seconds=max(seconds, 1))


def parse_state(value: str) -> PresenceState:
    """A state as typed (``available``, ``away``, ``break``); a clear refusal otherwise."""
    try:
        return PresenceState(value.strip().lower())
    except ValueError:
        raise ValidationFailed({"status": must_be_one_of(STATES)}) from None


def set_presence(
    session: Session,
    user: User,
    state: PresenceState,
    *,
    heartbeat: bool,
    now: datetime | None = None,
) -> Presence:
    """Set ``user``'s presence. ``heartbeat``: set by a desk that keeps beating (the TUI);
    else it holds until changed (the CLI, a simulation). ``since`` moves only when the state
    changes, so setting the same state again keeps how long it has lasted."""
    assert user.id is not None
    now = now or utcnow()
    row = session.get(Presence, user.id)
    before = row.state if row is not None else None
    if row is None:
        row = Presence(user_id=user.id, state=state, since=now)
    elif row.state != state:
        row.state, row.since = state, now
    row.heartbeat_at = now if heartbeat else None
    session.add(row)
    session.flush()
    if before != state:  # logged: the change watcher of every open desk sees it
        record_event(session, kind=PRESENCE_EVENT, actor=user, field_name="presence",
                     from_value=before, to_value=str(state), triggers_workflows=False)  # fmt: skip
    return row


def beat(session: Session, user: User, *, now: datetime | None = None) -> bool:
    """The open desk's heartbeat: its presence lasts another timeout. False when the user has
    no presence set by a desk (set from the CLI, or never): nothing to keep alive."""
    row = session.get(Presence, user.id)
    if row is None or row.heartbeat_at is None:
        return False
    row.heartbeat_at = now or utcnow()
    session.add(row)
    session.flush()
    return True


def _view(row: Presence | None, *, now: datetime, timeout: timedelta) -> PresenceView:
    if row is None:
        return PresenceView(PresenceState.away, None, None, None, False)
    state = PresenceState(row.state)
    beat_at = aware(row.heartbeat_at)
    timed_out = state != PresenceState.away and beat_at is not None and beat_at < now - timeout
    shown = PresenceState.away if timed_out else state
    return PresenceView(shown, state, aware(row.since), beat_at, timed_out)


def presence_of(session: Session, user: User, *, now: datetime | None = None) -> PresenceView:
    """``user``'s presence as the desk counts it at ``now``."""
    row = session.get(Presence, user.id)
    return _view(row, now=now or utcnow(), timeout=presence_timeout(session))


def available_now(session: Session, *, now: datetime) -> Any:
    """A condition on ``Presence`` (joined by the caller): the expert counts as available at
    ``now`` (state available, and a heartbeat within the timeout or none needed)."""
    return _available_since(now - presence_timeout(session))


def _available_since(cutoff: Any) -> Any:
    """``available_now`` with its heartbeat cutoff given (a time, or a bind parameter)."""
    return (col(Presence.state) == PresenceState.available) & or_(
        col(Presence.heartbeat_at).is_(None), col(Presence.heartbeat_at) >= cutoff
    )


def available_members(session: Session, team_id: int, *, now: datetime) -> Any:
    """A select of the user ids of the team's active members available at ``now``."""
    return members_available_since(team_id, now - presence_timeout(session))


def members_available_since(team: Any, cutoff: Any) -> Any:
    """``available_members`` with the team and the heartbeat cutoff given (values, or bind
    parameters of a statement compiled once: ``store.waiting``)."""
    return (
        sa_select(col(Membership.user_id))
        .join(User, col(User.id) == col(Membership.user_id))
        .join(Presence, col(Presence.user_id) == col(Membership.user_id))
        .where(
            col(Membership.team_id) == team,
            col(User.active).is_(True),
            _available_since(cutoff),
        )
    )


@dataclass(frozen=True)
class TeamPresence:
    """How many of a team's active members are available now, of how many."""

    available: int
    members: int

    def short(self) -> str:
        return f"{self.available} / {self.members}"


def team_presence(session: Session, *, now: datetime | None = None) -> dict[str, TeamPresence]:
    """Every team (by name): its available and active members; one statement."""
    now = now or utcnow()
    available = func.count(col(Presence.user_id)).filter(available_now(session, now=now))
    rows = session.execute(
        sa_select(col(Team.name), func.count(col(User.id)), available)
        .select_from(Team)
        .outerjoin(Membership, col(Membership.team_id) == col(Team.id))
        .outerjoin(User, (col(User.id) == col(Membership.user_id)) & col(User.active))
        .outerjoin(Presence, col(Presence.user_id) == col(User.id))
        .group_by(col(Team.name))
    ).all()
    return {name: TeamPresence(int(on or 0), int(members)) for name, members, on in rows}
