"""Workflows that would trigger themselves, found when one is saved or enabled.

A workflow's tasks raise events: ``create_ticket`` a ``ticket.created``, ``comment`` (and the
comment of ``change_status``/``escalate``) a ``ticket.commented``, ``change_status`` a
``ticket.status_changed`` (and ``ticket.escalated`` for "escalated"). When such an event
matches the workflow's own trigger, directly or through other enabled workflows, each run
causes the next and it would never stop: the run-time guard in ``engine.dispatch`` stops it
only after thousands of events, holding the desk's write lock meanwhile. So it is refused
when it is saved, naming the loop.

Two kinds of loop end by themselves and are allowed:
- status changes that all set the same status (a workflow on ``ticket.status_changed`` that
  escalates): the second run finds the status already set and raises no event;
- a step that the next workflow's conditions rule out for certain: a ``tck://Field/...``
  ``is``/``is not`` condition (alone, or directly in a top-level ``all``) on what the step
  surely sets: the status it sets, or the source of a ticket a workflow creates (``survey``
  or ``checkin``, never ``campaign`` or ``manual``) and its team and status when the task
  names them plainly.
Other conditions are not looked at: a loop they might end is still refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from cxdesk.store.models import Workflow

_ANY = "*"  # an edge that always raises a new event (not a status that may already be set)
_MIXED = "!"  # a path whose events never run out


Facts = Mapping[str, frozenset[str]]
"""What an event's ticket surely holds: field name -> its possible values."""


@dataclass(frozen=True)
class Raised:
    """An event a task raises: its kind, the status it sets (or ``*``: a new event every
    time), and what its ticket surely holds."""

    kind: str
    status: str
    facts: Facts


@dataclass(frozen=True)
class _Node:
    name: str
    event: str
    runs_on_ticket_events: bool  # a survey-bound workflow runs for survey responses only
    conditions: Any
    raises: tuple[Raised, ...]


def raised_events(tasks: Sequence[Mapping[str, Any]]) -> list[Raised]:
    """The events a workflow's tasks raise. Its events are dispatched after all its tasks
    ran, so the status an event's ticket holds then is the last one the workflow set on that
    ticket (tasks after a ``create_ticket`` act on the new ticket): read backwards."""
    raised: list[Raised] = []
    final_status: str | None = None  # the last status set on the ticket tasks act on here
    for task in reversed(tasks):
        kind = task.get("type")
        if kind in ("change_status", "escalate"):
            status = "escalated" if kind == "escalate" else str(task.get("status"))
            final_status = final_status or status
            facts = {"status": frozenset({final_status})}
            if task.get("comment"):
                raised.append(Raised("ticket.commented", _ANY, {}))
            if status == "escalated":
                raised.append(Raised("ticket.escalated", status, facts))
            raised.append(Raised("ticket.status_changed", status, facts))
        elif kind == "comment":
            raised.append(Raised("ticket.commented", _ANY, {}))
        elif kind == "create_ticket":
            raised.append(Raised("ticket.created", _ANY, _new_ticket_facts(task, final_status)))
            final_status = None  # tasks before it act on the event's ticket
    return raised[::-1]


def _new_ticket_facts(task: Mapping[str, Any], final_status: str | None) -> Facts:
    """What a ``create_ticket`` task's ticket surely holds: its source, its team when the
    task names it plainly (not piped), and its status: the last one later tasks set, else
    the task's plain one (not from a ticket template)."""
    facts = {"source": frozenset({"survey", "checkin"})}
    plain = {} if task.get("template") else {"status": "new"}
    plain.update({key: task[key] for key in ("team", "status") if key in task})
    if final_status is not None:
        plain["status"] = final_status
    for key, value in plain.items():
        if isinstance(value, str) and "${" not in value:
            facts[key] = frozenset({value})
    return facts


def ruled_out(conditions: Any, facts: Facts) -> bool:
    """Whether ``conditions`` surely fail for a ticket holding ``facts``."""
    if not isinstance(conditions, Mapping):
        return False
    parts = conditions.get("all", [conditions])
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Mapping) or not str(part.get("field")).startswith("tck://Field/"):
            continue
        possible = facts.get(str(part["field"]).removeprefix("tck://Field/"))
        value = str(part.get("value"))
        if possible is not None and (
            (part.get("op") == "is" and value not in possible)
            or (part.get("op") == "is not" and possible == {value})
        ):
            return True
    return False


def _node(workflow: Workflow) -> _Node:
    tasks = workflow.tasks if isinstance(workflow.tasks, list) else []
    raises = raised_events([t for t in tasks if isinstance(t, Mapping)])
    return _Node(
        workflow.name, workflow.event, not workflow.survey_name, workflow.conditions, tuple(raises)
    )


def _joined(path_state: str, status: str) -> str:
    if path_state == "" or path_state == status:
        return status
    return _MIXED


def trigger_loop(session: Session, workflow: Workflow) -> list[str] | None:
    """The names along a loop by which ``workflow`` (as it is being saved or enabled, with
    the other enabled workflows as stored) would trigger itself again and again, first and
    last its own name; None if there is none."""
    start = _node(workflow)
    others = session.exec(
        select(Workflow).where(col(Workflow.enabled), Workflow.name != workflow.name)
    ).all()
    nodes = [start] + [_node(other) for other in others]
    listeners: dict[str, list[_Node]] = {}
    for node in nodes:
        if node.runs_on_ticket_events:
            listeners.setdefault(node.event, []).append(node)
    # Breadth first over (workflow, what the path's events set so far); a path back to the
    # start whose events do not all set one status is a loop that never ends.
    came_from: dict[tuple[str, str], tuple[str, str] | None] = {(start.name, ""): None}
    queue = deque([(start, "")])
    while queue:
        node, state = queue.popleft()
        for raised in node.raises:
            for listener in listeners.get(raised.kind, []):
                if ruled_out(listener.conditions, raised.facts):
                    continue
                step = (listener.name, _joined(state, raised.status))
                if step in came_from:
                    continue
                came_from[step] = (node.name, state)
                if listener.name == start.name and step[1] in (_ANY, _MIXED):
                    return _path(came_from, step)
                queue.append((listener, step[1]))
    return None


def _path(
    came_from: Mapping[tuple[str, str], tuple[str, str] | None], last: tuple[str, str]
) -> list[str]:
    names: list[str] = []
    step: tuple[str, str] | None = last
    while step is not None:
        names.append(step[0])
        step = came_from[step]
    return names[::-1]
