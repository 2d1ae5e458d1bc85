"""Applying a seed file: one TOML file describes a whole event desk (SPEC section 8).

Everything is checked and applied in one transaction: if any entry is wrong, nothing is
applied and every problem is listed with its line. Applying the same file twice changes
nothing (entries are created when missing and brought in line when they differ).
"""

from __future__ import annotations

import re
import secrets
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from cxdesk.engine.macros import apply_seed_macro
from cxdesk.engine.scheduled import SCHEDULE_EVENT
from cxdesk.engine.tasks import ticket_spec_problems
from cxdesk.engine.workflows import get_workflow, save_workflow
from cxdesk.errors import DeskError, must_be_one_of
from cxdesk.i18n import DESK_LANGUAGE_SETTING, LANGUAGES, N_, _, ngettext
from cxdesk.store import directory, sla_policies
from cxdesk.store.caps import ANY_ORDER_SETTING, ANY_ORDERS
from cxdesk.store.directory import TIME_ZONE_SETTING
from cxdesk.store.inbound import INBOUND_TEAM_SETTING, REOPEN_DAYS_SETTING
from cxdesk.store.models import (
    EscalationRule,
    Membership,
    Queue,
    QueueAssign,
    QueueOrder,
    Role,
    Status,
    StatusCategory,
    Survey,
    Ticket,
    TicketTemplate,
    User,
)
from cxdesk.store.passwords import hash_password, verify_password
from cxdesk.store.phones import normalise_phone
from cxdesk.store.surveys import save_survey
from cxdesk.store.user_files import read_regular_file
from cxdesk.text import printable, text_problem

# section -> {key: (type, required)}
SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "teams": {"name": (str, True)},
    "users": {
        "username": (str, True),
        "name": (str, True),
        "email": (str, True),
        "role": (str, True),
        "phone": (str, False),
        "password": (str, False),
        "teams": (list, False),
    },
    "queues": {
        "name": (str, True),
        "team": (str, True),
        "order": (str, False),
        "assign": (str, False),
    },  # fmt: skip
    "statuses": {"name": (str, True), "category": (str, True)},
    "surveys": {
        "name": (str, True),
        "title": (str, True),
        "kind": (str, False),
        "questions": (list, True),
        "languages": (dict, False),
    },
    "ticket_templates": {"name": (str, True), "title": (str, False)},
    "workflows": {
        "name": (str, True),
        "event": (str, False),  # or a schedule (engine.scheduled): one of the two
        "schedule": (str, False),
        "delay_minutes": (int, False),
        "survey": (str, False),
        "conditions": (dict, False),
        "tasks": (list, True),
        "enabled": (bool, False),
    },
    "escalation_rules": {
        "name": (str, True),
        "after_minutes": (int, True),
        "team": (str, False),
        "survey": (str, False),
        "recipient_user": (str, False),
        "recipient_team": (str, False),
        "enabled": (bool, False),
    },
    # Canned actions on a ticket (engine.macros): set fields, a note, a reply.
    "macros": {"name": (str, True), "team": (str, False), "actions": (list, True)},
    **sla_policies.SEED_SCHEMA,  # [[sla_calendars]], [[sla_policies]]
}
DESK_KEYS = {
    "name": str,
    "ticket_prefix": str,
    "phone_region": str,
    "inbound_team": str,  # where email and texts from strangers open tickets (store.inbound)
    "reopen_days": int,  # how long after its resolution a customer's reply reopens a ticket
    "auto_reply_minutes": int,
    "estimate_min_handled": int,
    "noshow_recalls": int,  # recalls before a no-show resolves the ticket (store.noshow)
    "near_front_position": int,  # where a waiting customer is told "you're next"
    "max_open_tickets": int,  # a pull beyond this many open tickets is refused (store.caps)
    "pull_any_order": str,  # "priority" or "wait": what a pull from any team takes first
    "time_zone": str,  # an IANA name (default UTC): the wall times of scheduled workflows
    "language": str,  # en, ja, fr or it (default en): customers' messages and pages, users'
}
# Whole-number desk settings: (lowest, highest, what the number counts), said in the error.
DESK_RANGES = {
    "auto_reply_minutes": (0, 527040, N_("minutes")),
    "estimate_min_handled": (1, 1000, N_("handled tickets")),
    "noshow_recalls": (0, 20, N_("recalls")),
    "near_front_position": (0, 100, N_("places in line")),
    "max_open_tickets": (1, 1000, N_("open tickets")),
}
# Desk settings stored in the database (``directory.set_setting``), every terminal the same.
# (``inbound_team`` and ``reopen_days`` are set apart, once the seed's teams exist.)
SETTING_KEYS = (
    "ticket_prefix",
    "phone_region",
    "auto_reply_minutes",
    "estimate_min_handled",
    "noshow_recalls",
    "near_front_position",
    "max_open_tickets",
    "pull_any_order",
    "time_zone",
    DESK_LANGUAGE_SETTING,
)
MAX_SEED_BYTES = 1024 * 1024  # the demo desk's seed is 11 KB
MAX_SEED_DEPTH = 48  # a workflow's conditions nest at most 16 groups (two levels each)
# Sections whose entries may carry keys beyond the schema (templates hold ticket settings).
OPEN_SECTIONS = {"ticket_templates"}


@dataclass
class SeedReport:
    """What applying a seed did: entries created per section."""

    created: Counter[str] = field(default_factory=Counter)


class SeedProblems(DeskError):
    """The seed file is wrong; ``problems`` lists every one, with its line where known."""

    def __init__(self, path: str, problems: list[str]):
        self.problems = problems
        head = ngettext(
            "{path}: {n} problem, nothing applied:",
            "{path}: {n} problems, nothing applied:",
            len(problems),
        ).format(path=path, n=len(problems))
        super().__init__(head + "\n  " + "\n  ".join(problems))


def read_seed(path: Path) -> tuple[dict[str, Any], str]:
    """The seed file's data and text; a file that is not a regular one, larger than
    ``MAX_SEED_BYTES``, not UTF-8 TOML or nested deeper than ``MAX_SEED_DEPTH`` is refused
    with one line before anything is applied."""
    content = read_regular_file(path, limit=MAX_SEED_BYTES, what="seed file")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeskError(
            _("Cannot read seed file {path}: not UTF-8 text ({reason})").format(
                path=path, reason=exc.reason
            )
        ) from exc
    too_deep = DeskError(
        _("{path}: values nest more than {depth} deep").format(path=path, depth=MAX_SEED_DEPTH)
    )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeskError(
            _("{path}: not valid TOML: {problem}").format(path=path, problem=exc)
        ) from exc
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise too_deep from None
    if nesting_depth(data) > MAX_SEED_DEPTH:
        raise too_deep
    return data, text


def nesting_depth(value: object) -> int:
    """How deep lists and tables nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
            deepest = max(deepest, depth + 1)
    return deepest


def _entry_lines(text: str, section: str) -> list[int]:
    """Line numbers of each ``[[section]]`` header, in order."""
    header = re.compile(rf"^\s*\[\[\s*{re.escape(section)}\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), start=1) if header.match(line)]


def _where(text: str, section: str, index: int, entry: Any) -> str:
    lines = _entry_lines(text, section)
    name = (entry.get("username") or entry.get("name")) if isinstance(entry, dict) else None
    label = f"{section}[{index + 1}]" + (f" ({printable(str(name), lines=False)})" if name else "")
    return (
        _("line {line}: {entry}").format(line=lines[index], entry=label)
        if index < len(lines)
        else label
    )


def shape_problems(data: dict[str, Any], text: str) -> tuple[list[str], set[tuple[str, int]]]:
    """Wrong types, missing keys, unknown sections and duplicate names; and which entries
    (section, index) are too malformed to go further."""
    problems: list[str] = []
    malformed: set[tuple[str, int]] = set()
    for section in data:
        if section not in SCHEMA and section != "desk":
            problems.append(
                _("unknown section [{section}] (known: {known})").format(
                    section=section, known=", ".join(["desk", *SCHEMA])
                )
            )
    desk = data.get("desk", {})
    if not isinstance(desk, dict):
        problems.append(_("[desk] must be a table"))
    else:
        for key, value in desk.items():
            if key not in DESK_KEYS:
                problems.append(_("[desk]: unknown key {key!r}").format(key=key))
            elif key in DESK_RANGES:
                low, high, unit = DESK_RANGES[key]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not low <= value <= high
                ):
                    problems.append(
                        _("[desk]: {key} must be a whole number of {unit} from {low} to {high}, "
                          "not {value!r}").format(
                            key=key, unit=_(unit), low=low, high=high, value=value
                        )
                    )  # fmt: skip
            elif not isinstance(value, DESK_KEYS[key]):
                problems.append(
                    _("[desk]: {key} must be a {kind}").format(
                        key=key, kind=DESK_KEYS[key].__name__
                    )
                )
            elif key == ANY_ORDER_SETTING and value not in ANY_ORDERS:
                problems.append(f"[desk]: {key} {must_be_one_of(ANY_ORDERS)}")
            elif key == TIME_ZONE_SETTING and (zone := directory.zone_problem(str(value))):
                problems.append(f"[desk]: {key}: {zone}")
            elif key == DESK_LANGUAGE_SETTING and value not in LANGUAGES:
                problems.append(f"[desk]: {key} {must_be_one_of(LANGUAGES)}")
    for section, schema in SCHEMA.items():
        entries = data.get(section, [])
        if not isinstance(entries, list):
            problems.append(
                _("{section} must be an array of tables ([[{section}]])").format(section=section)
            )
            continue
        names: Counter[str] = Counter()
        for index, entry in enumerate(entries):
            where = _where(text, section, index, entry)
            before = len(problems)
            if not isinstance(entry, dict):
                problems.append(_("{where}: must be a table").format(where=where))
                malformed.add((section, index))
                continue
            for key, (kind, required) in schema.items():
                if key not in entry:
                    if required:
                        problems.append(_("{where}: missing {key}").format(where=where, key=key))
                elif not isinstance(entry[key], kind) or (
                    kind is int and isinstance(entry[key], bool)
                ):
                    expected = kind.__name__ if isinstance(kind, type) else "value"
                    problems.append(
                        _("{where}: {key} must be a {kind}").format(
                            where=where, key=key, kind=expected
                        )
                    )
            if section not in OPEN_SECTIONS:
                for key in entry:
                    if key not in schema:
                        problems.append(
                            _("{where}: unknown key {key!r}").format(where=where, key=key)
                        )
            for key in ("username", "name", "title"):
                value = entry.get(key)
                if isinstance(value, str) and (problem := text_problem(value)) is not None:
                    problems.append(f"{where}: {key} {problem}")
            name = entry.get("username" if section == "users" else "name")
            if isinstance(name, str):
                names[name] += 1
                if names[name] == 2:
                    problems.append(
                        _("{where}: duplicate name {name!r} in [[{section}]]").format(
                            where=where, name=name, section=section
                        )
                    )
            if len(problems) > before:
                malformed.add((section, index))
    return problems, malformed


def apply_seed(
    session: Session, data: dict[str, Any], text: str, *, path: str = "seed"
) -> SeedReport:
    """Check and apply ``data`` in the caller's transaction; raise SeedProblems listing every
    problem if anything is wrong (the caller's rollback then leaves the desk untouched).

    Entries with a wrong shape are reported and skipped; the rest are still applied (inside
    the doomed transaction) so that their own problems, such as an unknown team, are listed
    in the same run.
    """
    problems, malformed = shape_problems(data, text)
    sections = data if all(isinstance(data.get(s, []), list) for s in SCHEMA) else {}
    desk = data.get("desk", {}) if isinstance(data.get("desk", {}), dict) else {}
    report = SeedReport()
    directory.ensure_builtin_statuses(session)
    for key in SETTING_KEYS:
        value = desk.get(key)
        value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(value, str) and directory.get_setting(session, key) != value:
            directory.set_setting(session, key, value)
    appliers = [
        ("teams", _apply_team),
        ("users", _apply_user),
        ("queues", _apply_queue),
        ("statuses", _apply_status),
        ("surveys", _apply_survey),
        ("ticket_templates", _apply_template),
        ("workflows", _apply_workflow),
        ("escalation_rules", _apply_escalation_rule),
        ("macros", apply_seed_macro),
        ("sla_calendars", sla_policies.apply_calendar_entry),
        ("sla_policies", sla_policies.apply_policy_entry),
    ]
    for section, apply in appliers:
        for index, entry in enumerate(sections.get(section, [])):
            if (section, index) in malformed:
                continue
            try:
                if apply(session, entry):
                    report.created[section] += 1
            except DeskError as exc:
                where = _where(text, section, index, entry)
                problems += [f"{where}: {line}" for line in getattr(exc, "problems", [exc])]
    sla_policies.order_seed_policies(session, sections.get("sla_policies"))
    problems += _apply_inbound_settings(session, desk)
    if problems:
        raise SeedProblems(path, problems)
    return report


def _apply_inbound_settings(session: Session, desk: dict[str, Any]) -> list[str]:
    """``[desk]`` ``inbound_team`` (a team, after the seed's teams exist) and ``reopen_days``."""
    team, days = desk.get("inbound_team"), desk.get("reopen_days")
    if isinstance(team, str):
        try:
            directory.get_team(session, team)
        except DeskError as exc:
            return [f"[desk]: inbound_team: {exc}"]
        directory.set_setting(session, INBOUND_TEAM_SETTING, team)
    if isinstance(days, int):
        if isinstance(days, bool) or days < 0:
            return ["[desk]: reopen_days must be a number of days, 0 or more"]
        directory.set_setting(session, REOPEN_DAYS_SETTING, str(days))
    return []


def _apply_team(session: Session, entry: dict[str, Any]) -> bool:
    try:
        directory.get_team(session, entry["name"])
        return False
    except DeskError:
        directory.add_team(session, actor=None, name=entry["name"])
        return True


def _apply_user(session: Session, entry: dict[str, Any]) -> bool:
    teams = entry.get("teams", [])
    if not all(isinstance(t, str) for t in teams):
        raise DeskError(_("teams must be a list of team names"))
    existing = session.exec(select(User).where(User.username == entry["username"])).first()
    if existing is None:
        directory.add_user(
            session,
            actor=None,
            username=entry["username"],
            name=entry["name"],
            email=entry["email"],
            phone=entry.get("phone"),
            role=entry["role"],
            password=entry.get("password") or secrets.token_urlsafe(24),
            teams=teams,
        )
        return True
    if entry["role"] not in Role.__members__:
        raise DeskError(f"role {must_be_one_of(Role)}")
    phone = entry.get("phone")
    if phone:
        phone = normalise_phone(phone, directory.get_setting(session, "phone_region"))
    wanted = {"name": entry["name"], "email": entry["email"], "role": entry["role"], "phone": phone}
    for key, value in wanted.items():
        if getattr(existing, key) != value:
            setattr(existing, key, value)
    password = entry.get("password")
    if password and not verify_password(existing.password_hash, password):
        existing.password_hash = hash_password(password)
    session.add(existing)
    for team_name in teams:
        team = directory.get_team(session, team_name)
        if session.get(Membership, (existing.id, team.id)) is None:
            assert existing.id is not None and team.id is not None
            session.add(Membership(user_id=existing.id, team_id=team.id))
    session.flush()
    return False


def _apply_queue(session: Session, entry: dict[str, Any]) -> bool:
    ordering = entry.get("order", QueueOrder.oldest)
    assign = entry.get("assign", QueueAssign.pull)
    existing = session.exec(select(Queue).where(Queue.name == entry["name"])).first()
    if existing is None:
        directory.add_queue(session, actor=None, name=entry["name"], team=entry["team"],
                            ordering=ordering, assign=assign)  # fmt: skip
        return True
    if ordering not in QueueOrder.__members__:
        raise DeskError(f"order {must_be_one_of(QueueOrder)}")
    team = directory.get_team(session, entry["team"])
    if (existing.team_id, existing.ordering) != (team.id, ordering):
        assert team.id is not None
        existing.team_id, existing.ordering = team.id, ordering
        session.add(existing)
        session.flush()
    if existing.assign != assign:
        directory.update_queue(session, actor=None, name=existing.name, assign=assign)
    return False


def _apply_status(session: Session, entry: dict[str, Any]) -> bool:
    existing = session.exec(select(Status).where(Status.name == entry["name"])).first()
    if existing is None:
        directory.add_status(session, actor=None, name=entry["name"], category=entry["category"])
        return True
    if entry["category"] not in StatusCategory.__members__:
        raise DeskError(f"category {must_be_one_of(StatusCategory)}")
    if existing.builtin and existing.category != entry["category"]:
        raise DeskError(
            _("built-in status {name!r} cannot change category").format(name=existing.name)
        )
    if existing.category != entry["category"]:
        paused = StatusCategory.paused
        if paused in (existing.category, entry["category"]) and _status_in_use(session, existing):
            # Their clocks would stay as they are (running, or stopped) under the new meaning.
            raise DeskError(
                _(
                    "status {name!r} cannot change to or from paused while tickets are in it: "
                    "move them to another status first"
                ).format(name=existing.name)
            )
        existing.category = entry["category"]
        session.add(existing)
        session.flush()
    return False


def _status_in_use(session: Session, status: Status) -> bool:
    found = session.exec(select(Ticket.id).where(Ticket.status == status.name).limit(1))
    return found.first() is not None


def _apply_survey(session: Session, entry: dict[str, Any]) -> bool:
    survey = session.exec(select(Survey).where(Survey.name == entry["name"])).first()
    languages = entry.get("languages") or None
    wanted = (entry["title"], entry.get("kind", "checkin"), entry["questions"], languages)
    if survey is not None and (
        (survey.title, survey.kind, survey.questions, survey.languages) == wanted
    ):
        return False
    save_survey(
        session,
        actor=None,
        name=entry["name"],
        title=entry["title"],
        kind=entry.get("kind", "checkin"),
        questions=entry["questions"],
        languages=languages,
    )
    return survey is None


def _apply_template(session: Session, entry: dict[str, Any]) -> bool:
    definition = {k: v for k, v in entry.items() if k != "name"}
    problems = ticket_spec_problems(definition, None)
    if problems:
        raise DeskError("; ".join(problems))
    existing = session.exec(
        select(TicketTemplate).where(TicketTemplate.name == entry["name"])
    ).first()
    if existing is None:
        session.add(TicketTemplate(name=entry["name"], definition=definition))
        session.flush()
        return True
    if existing.definition != definition:
        existing.definition = definition
        session.add(existing)
        session.flush()
    return False


def _apply_workflow(session: Session, entry: dict[str, Any]) -> bool:
    try:
        existing = get_workflow(session, entry["name"])
    except DeskError:
        existing = None
    wanted = (
        entry.get("event", SCHEDULE_EVENT if "schedule" in entry else ""),
        entry.get("schedule"),
        entry.get("delay_minutes"),
        entry.get("survey"),
        entry.get("conditions", {}),
        entry["tasks"],
        entry.get("enabled", True),
    )
    if existing is not None and wanted == (
        existing.event,
        existing.schedule,
        existing.delay_minutes,
        existing.survey_name,
        existing.conditions,
        existing.tasks,
        existing.enabled,
    ):
        return False
    save_workflow(
        session,
        actor=None,
        name=entry["name"],
        event=entry.get("event"),
        schedule=entry.get("schedule"),
        delay_minutes=entry.get("delay_minutes"),
        survey_name=entry.get("survey"),
        conditions=entry.get("conditions", {}),
        tasks=entry["tasks"],
        enabled=entry.get("enabled", True),
    )
    return existing is None


def _apply_escalation_rule(session: Session, entry: dict[str, Any]) -> bool:
    if entry["after_minutes"] <= 0:
        raise DeskError(_("after_minutes must be positive"))
    if not (entry.get("recipient_user") or entry.get("recipient_team")):
        raise DeskError(_("needs recipient_user or recipient_team"))
    team = directory.get_team(session, entry["team"]) if entry.get("team") else None
    user = (
        directory.get_user(session, entry["recipient_user"])
        if entry.get("recipient_user")
        else None
    )
    rteam = (
        directory.get_team(session, entry["recipient_team"])
        if entry.get("recipient_team")
        else None
    )
    values = {
        "survey_name": entry.get("survey"),
        "team_id": team.id if team else None,
        "after_minutes": entry["after_minutes"],
        "recipient_user_id": user.id if user else None,
        "recipient_team_id": rteam.id if rteam else None,
        "enabled": entry.get("enabled", True),
    }
    existing = session.exec(
        select(EscalationRule).where(EscalationRule.name == entry["name"])
    ).first()
    rule = existing or EscalationRule(name=entry["name"], after_minutes=entry["after_minutes"])
    changed = existing is None
    for key, value in values.items():
        if getattr(rule, key) != value:
            setattr(rule, key, value)
            changed = True
    if changed:
        session.add(rule)
        session.flush()
    return existing is None
