"""``cxdesk user|team|queue|status``: the people and structure of a desk."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from sqlalchemy import Engine

from cxdesk.cli.common import (
    ADMIN_AS_OPTION,
    AS_OPTION,
    acting_user,
    console,
    desk_engine,
    format_wait,
    print_table,
    proven,
    proven_admin,
    read_password,
    setup_actor,
)
from cxdesk.engine.dispatch import auto_assign_and_dispatch
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, language_name, use_language
from cxdesk.store import caps, directory
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import PresenceState, QueueAssign, Role
from cxdesk.store.presence import parse_state, presence_of, set_presence, state_words
from cxdesk.store.user_language import checked_language, set_user_language
from cxdesk.store.waiting import queue_outlooks, wait_in_words

user_app = typer.Typer(help=N_("Users (admins, experts, volunteers)."), no_args_is_help=True)
team_app = typer.Typer(help=N_("Teams (one per product)."), no_args_is_help=True)
queue_app = typer.Typer(help=N_("Queues experts pull tickets from."), no_args_is_help=True)
ASSIGN_HELP = N_(
    "pull (experts pull by hand) or auto (the desk gives the oldest waiting ticket to the "
    "available member with the fewest open tickets)."
)
LANG_HELP = N_("The language the desk speaks to this user: en, ja, fr or it.")
status_app = typer.Typer(help=N_("Ticket statuses, built-in and custom."), no_args_is_help=True)


@user_app.command("add")
def user_add(
    username: str,
    name: str = typer.Option(..., "--name", help=N_("Display name.")),
    email: str = typer.Option(..., "--email"),
    role: str = typer.Option(..., "--role", help=N_("admin, expert or volunteer.")),
    phone: str | None = typer.Option(None, "--phone"),
    team: list[str] = typer.Option([], "--team", help=N_("A team to join (repeatable).")),  # noqa: B006
    lang: str | None = typer.Option(None, "--lang", help=LANG_HELP),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Add a user; the new user's password comes from CXDESK_PASSWORD or a prompt."""
    engine = desk_engine()
    admin = proven_admin(as_user)
    language = checked_language(lang) if lang else None
    if admin is None and role != Role.admin:  # else nobody could ever prove an admin
        raise DeskError(
            _("A desk's first user is its admin: `cxdesk init --admin USERNAME --name N --email E`")
        )
    password = read_password(_("Password for the new user {username}").format(username=username))
    with transaction(engine) as session:
        user = directory.add_user(
            session,
            actor=setup_actor(session, admin),
            username=username,
            name=name,
            email=email,
            phone=phone,
            role=role,
            password=password,
            teams=team,
        )
        user.language = language
    console.print(_("Added {role} {user}.").format(role=user.role, user=user.username))


@user_app.command("list")
def user_list(as_user: str | None = AS_OPTION) -> None:
    """Every user with role and teams."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        rows = [
            (
                u.username,
                u.name,
                u.role,
                u.email,
                u.phone,
                ", ".join(t.name for t in directory.user_teams(session, u)),
                language_name(u.language) if u.language else "",
            )
            for u in directory.list_users(session)
        ]
    print_table(
        N_("Users"),
        [
            N_("username"),
            N_("name"),
            N_("role"),
            N_("email"),
            N_("phone"),
            N_("teams"),
            N_("language"),
        ],
        rows,
    )


@user_app.command("set")
def user_set(
    username: str,
    lang: str = typer.Option(..., "--lang", help=LANG_HELP),
    as_user: str | None = AS_OPTION,
) -> None:
    """Set a user's language (an admin for anyone, a user for themselves)."""
    acting = proven(as_user)
    with transaction(desk_engine()) as session:
        user = set_user_language(session, actor=acting_user(session, acting), username=username,
                                 language=lang)  # fmt: skip
        code = user.language or ""
    if username == acting:  # their own: said in it already
        use_language(code)
    console.print(
        _("{username} speaks {language}.").format(username=username, language=language_name(code))
    )


@user_app.command("update")
def user_update(
    username: str,
    max_open: str = typer.Option(
        ..., "--max-open", help=N_("Open tickets before a pull is refused: N, none or default.")
    ),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Change a user's cap on open tickets (``default``: the desk's max_open_tickets)."""
    admin = proven_admin(as_user)
    cap = caps.parse_max_open(max_open)
    with transaction(desk_engine()) as session:
        user = caps.set_user_cap(session, actor=setup_actor(session, admin), username=username,
                                 cap=cap)  # fmt: skip
        said = caps.describe_cap(cap, directory.get_setting(session, caps.CAP_SETTING))
    console.print(_("{user}'s cap on open tickets: {said}.").format(user=user.username, said=said))


@user_app.command("join")
def user_join(username: str, team: str, as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Put a user on a team."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        directory.add_member(
            session, actor=setup_actor(session, admin), username=username, team=team
        )
    console.print(_("{username} is on team {team}.").format(username=username, team=team))


@user_app.command("status")
def user_status(
    state: str | None = typer.Argument(None, help=N_("available, away or break; none: show it.")),
    as_user: str | None = AS_OPTION,
) -> None:
    """Set your presence (available, away, break), or show it. Set here, it holds until
    changed; the desk (TUI) keeps its own alive by a heartbeat while it is open."""
    engine = desk_engine()
    username = proven(as_user)
    if state is None:
        with read_session(engine) as session:
            line = presence_of(session, directory.get_user(session, username)).line()
        console.print(
            _("{username}: {line}").format(username=username, line=line),
            markup=False,
            highlight=False,
        )
        return
    chosen = parse_state(state)
    with transaction(engine) as session:
        set_presence(session, acting_user(session, username), chosen, heartbeat=False)
    said = _("{username} is {state}.").format(username=username, state=state_words(chosen))
    console.print(said, markup=False, highlight=False)
    if chosen == PresenceState.available:
        for ticket in auto_assign_and_dispatch(engine):
            console.print(
                _("Assigned {key} to {user}.").format(key=ticket.key, user=ticket.username)
            )


@team_app.command("add")
def team_add(name: str, as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Add a team."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        directory.add_team(session, actor=setup_actor(session, admin), name=name)
    console.print(_("Added team {name}.").format(name=name))


@team_app.command("list")
def team_list(as_user: str | None = AS_OPTION) -> None:
    """Every team with its members."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        rows = [
            (t.name, ", ".join(u.username for u in directory.team_members(session, t)))
            for t in directory.list_teams(session)
        ]
    print_table(N_("Teams"), [N_("team"), N_("members")], rows)


@queue_app.command("add")
def queue_add(
    name: str,
    team: str = typer.Option(..., "--team"),
    order: str = typer.Option("oldest", "--order", help=N_("oldest or priority (then oldest).")),
    assign: str = typer.Option("pull", "--assign", help=ASSIGN_HELP),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Add a queue for a team."""
    admin = proven_admin(as_user)
    engine = desk_engine()
    with transaction(engine) as session:
        directory.add_queue(session, actor=setup_actor(session, admin), name=name, team=team,
                            ordering=order, assign=assign)  # fmt: skip
    if assign == QueueAssign.auto:
        said = _("Added queue {name} for team {team}, assigned by the desk to available experts.")
    else:
        said = _("Added queue {name} for team {team}, pulled by experts.")
    console.print(said.format(name=name, team=team))
    _assign_now(engine, assign)


@queue_app.command("update")
def queue_update(
    name: str,
    order: str | None = typer.Option(None, "--order", help=N_("oldest or priority (then oldest).")),
    assign: str | None = typer.Option(None, "--assign", help=ASSIGN_HELP),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Change a queue's order or how it hands out tickets."""
    if order is None and assign is None:
        raise DeskError(_("Nothing to change: give --order and/or --assign"))
    admin = proven_admin(as_user)
    engine = desk_engine()
    with transaction(engine) as session:
        queue = directory.update_queue(session, actor=setup_actor(session, admin), name=name,
                                       ordering=order, assign=assign)  # fmt: skip
        mode, ordering = queue.assign, queue.ordering
    if mode == QueueAssign.auto:
        said = _("Queue {name}: {ordering} first, assigned by the desk to available experts.")
    else:
        said = _("Queue {name}: {ordering} first, pulled by experts.")
    console.print(said.format(name=name, ordering=ordering))
    _assign_now(engine, mode)


def _assign_now(engine: Engine, assign: str) -> None:
    """An auto queue hands out what already waits at once (the worker goes on from there)."""
    if assign == QueueAssign.auto:
        for ticket in auto_assign_and_dispatch(engine):
            console.print(
                _("Assigned {key} to {user}.").format(key=ticket.key, user=ticket.username)
            )


@queue_app.command("list")
def queue_list(as_user: str | None = AS_OPTION) -> None:
    """Every queue, how many tickets wait and since when, and the next customer's position
    and estimated wait."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        outlooks = queue_outlooks(session)
    now = datetime.now(UTC)
    print_table(
        "Queues",
        [
            N_("queue"),
            N_("team"),
            N_("order"),
            N_("waiting"),
            N_("next position"),
            N_("oldest wait"),
            N_("estimate"),
            N_("assign"),
        ],
        [
            (
                o.stats.name,
                o.stats.team,
                o.stats.ordering,
                o.stats.waiting,
                o.next_position,
                format_wait(o.stats.oldest_created, now),
                wait_in_words(o.next_wait),
                o.stats.assign,
            )
            for o in outlooks
        ],
    )


@status_app.command("add")
def status_add(
    name: str,
    category: str = typer.Option(
        ...,
        "--category",
        help=N_("open, resolved or paused (waiting on someone else: SLA clocks stop)."),
    ),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Add a custom status in a category (open-like, resolved-like, or paused: e.g. "Waiting on
    customer", still unresolved but its SLA clocks stop)."""
    admin = proven_admin(as_user)
    with transaction(desk_engine()) as session:
        directory.add_status(
            session, actor=setup_actor(session, admin), name=name, category=category
        )
    console.print(_("Added status {name} ({category}).").format(name=name, category=category))


@status_app.command("list")
def status_list(as_user: str | None = AS_OPTION) -> None:
    """Built-in and custom statuses."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        rows = [
            (s.name, s.category, "built-in" if s.builtin else "custom")
            for s in directory.list_statuses(session)
        ]
    print_table(N_("Statuses"), [N_("status"), N_("category"), N_("kind")], rows)
