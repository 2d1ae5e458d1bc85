"""The ticket screen: fields, ticket data, customer comment, Comments and Log tabs, and edits.

Each action key opens a ``ChangeDialog`` (every update needs a comment); the change runs in a
worker through ``unit_of_work`` so workflows react, then the ticket is read again. Customer
name, email and created date are shown as plain labels: they are never editable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Static, TabbedContent, TabPane

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import DeskError
from cxdesk.screens.base import DeskScreen
from cxdesk.store.db import read_session
from cxdesk.store.directory import get_team, list_statuses, list_teams, team_members
from cxdesk.store.models import Priority
from cxdesk.store.tickets import (
    add_comment,
    comment_rows,
    get_ticket,
    read_attachment_files,
    ticket_data,
    ticket_log,
    tickets_to_dicts,
    update_ticket,
)
from cxdesk.widgets.change_dialog import ChangeDialog, ChangeRequest

FIELDS = (
    ("Status", "status"),
    ("Priority", "priority"),
    ("Team", "team"),
    ("Origin team", "origin_team"),
    ("Owner", "owner"),
    ("Customer", "customer_name"),
    ("Email", "customer_email"),
    ("Phone", "customer_phone"),
    ("Source", "source"),
    ("Channel", "channel"),
    ("Created", "created_at"),
    ("Updated", "updated_at"),
    ("Resolved", "resolved_at"),
)
NOBODY = "(nobody)"


@dataclass(frozen=True)
class TicketView:
    """One ticket as the screen shows it, with the choices its edit dialogs offer."""

    record: dict[str, object]
    data: list[tuple[str, str]]
    comments: list[dict[str, object]]
    log: list[dict[str, object]]
    statuses: list[str]
    teams: list[str]
    team_members: list[str]


def read_ticket_view(engine: Engine, key: str) -> TicketView:
    with read_session(engine) as session:
        ticket = get_ticket(session, key)
        record = tickets_to_dicts(session, [ticket])[0]
        team = get_team(session, str(record["team"]))
        return TicketView(
            record=record,
            data=ticket_data(session, ticket),
            comments=comment_rows(session, ticket),
            log=ticket_log(session, ticket),
            statuses=[s.name for s in list_statuses(session)],
            teams=[t.name for t in list_teams(session)],
            team_members=[u.username for u in team_members(session, team)],
        )


def _when(value: object) -> str:
    return "" if value is None else str(value)[:16].replace("T", " ")


class TicketScreen(DeskScreen):
    DEFAULT_CSS = """
    TicketScreen #ticket-body { height: 1fr; padding: 0 1; }
    TicketScreen #ticket-title { text-style: bold; margin-bottom: 1; }
    TicketScreen .section { text-style: bold; margin-top: 1; }
    TicketScreen TabbedContent { height: auto; min-height: 12; }
    TicketScreen DataTable { height: auto; max-height: 20; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("s", "status", "Status"),
        Binding("p", "priority", "Priority"),
        Binding("t", "team", "Team"),
        Binding("o", "owner", "Owner"),
        Binding("c", "comment", "Comment"),
        Binding("r", "resolve", "Resolve"),
        Binding("e", "escalate", "Escalate"),
    ]

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.view: TicketView | None = None
        """The ticket as last read; None until the first read finishes."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="ticket-body"):
            yield Label(f"{self.key}  (loading…)", id="ticket-title", markup=False)
            yield Static("", id="fields", markup=False)
            yield Label("Ticket data", classes="section")
            yield Static("", id="data", markup=False)
            yield Label("Customer comment", classes="section")
            yield Static("", id="customer-comment", markup=False)
            with TabbedContent(id="tabs"):
                with TabPane("Comments", id="tab-comments"):
                    comments: DataTable[str] = DataTable(id="comments", cursor_type="row")
                    comments.add_columns("At", "Author", "Comment")
                    yield comments
                with TabPane("Log", id="tab-log"):
                    log: DataTable[str] = DataTable(id="log", cursor_type="row")
                    log.add_columns("At", "Who", "What", "From", "To")
                    yield log
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="ticket-load", exit_on_error=False)
    def load(self) -> None:
        try:
            view = read_ticket_view(self.engine, self.key)
        except DeskError as error:
            self.report(error)
            return
        self.app.call_from_thread(self._show, view)

    def _show(self, view: TicketView) -> None:
        self.view = view
        record = view.record
        self.query_one("#ticket-title", Label).update(f"{record['key']}  {record['title']}")
        self.query_one("#fields", Static).update(
            "\n".join(
                f"{label:12} {_when(record[name]) if name.endswith('_at') else record[name] or ''}"
                for label, name in FIELDS
            )
        )
        data = "\n".join(f"{name:12} {value}" for name, value in view.data)
        self.query_one("#data", Static).update(data or "(none)")
        self.query_one("#customer-comment", Static).update(
            str(record["customer_comment"] or "(none)")
        )
        comments: DataTable[str] = self.query_one("#comments", DataTable)
        comments.clear()
        for row in view.comments:
            comments.add_row(_when(row["at"]), str(row["author"] or "system"), str(row["body"]))
        log: DataTable[str] = self.query_one("#log", DataTable)
        log.clear()
        for event in view.log:
            what = f"{event['kind']} {event['field'] or ''}".strip()
            log.add_row(
                _when(event["at"]),
                str(event["who"]),
                what,
                str(event["from"] or ""),
                str(event["to"] or ""),
            )

    # -- actions: each asks for a comment, then saves in a worker ----------------------------

    def action_back(self) -> None:
        self.dismiss()

    def _ask(self, field: str | None, title: str, choices: list[tuple[str, str]] | None) -> None:
        if self.view is None:
            self.notify("The ticket is still loading", severity="warning")
            return
        current = str(self.view.record.get(field) or "") if field else None

        def save(request: ChangeRequest | None) -> None:
            if request is None:
                return
            changes = {field: request.value if request.value is not None else ""} if field else {}
            self.save(changes, request)

        self.app.push_screen(ChangeDialog(title, choices=choices, current=current), save)

    def action_status(self) -> None:
        statuses = self.view.statuses if self.view else []
        self._ask("status", f"Status of {self.key}", [(s, s) for s in statuses])

    def action_priority(self) -> None:
        self._ask("priority", f"Priority of {self.key}", [(p, p) for p in Priority])

    def action_team(self) -> None:
        teams = self.view.teams if self.view else []
        self._ask("team", f"Move {self.key} to team", [(t, t) for t in teams])

    def action_owner(self) -> None:
        members = self.view.team_members if self.view else []
        choices = [(NOBODY, ""), *((m, m) for m in members)]
        self._ask("owner", f"Owner of {self.key} (members of its team)", choices)

    def action_resolve(self) -> None:
        self._ask_fixed("resolved", f"Resolve {self.key}")

    def action_escalate(self) -> None:
        self._ask_fixed("escalated", f"Escalate {self.key}")

    def _ask_fixed(self, status: str, title: str) -> None:
        def save(request: ChangeRequest | None) -> None:
            if request is not None:
                self.save({"status": status}, request)

        self.app.push_screen(ChangeDialog(title), save)

    def action_comment(self) -> None:
        def save(request: ChangeRequest | None) -> None:
            if request is not None:
                self.save(None, request)

        title = f"Comment on {self.key} (up to 5 files, 500 KB each)"
        self.app.push_screen(ChangeDialog(title, with_attachments=True), save)

    @work(thread=True, exclusive=True, group="ticket-save", exit_on_error=False)
    def save(self, changes: dict[str, str | None] | None, request: ChangeRequest) -> None:
        """``changes`` None: a plain comment (with attachments); otherwise an update."""
        try:
            paths = [Path(p).expanduser() for p in request.attachment_paths]
            attachments = read_attachment_files(paths)
            with unit_of_work(self.engine) as session:
                if changes is None:
                    add_comment(
                        session,
                        actor=self.user,
                        key=self.key,
                        body=request.comment,
                        attachments=attachments,
                    )
                else:
                    update_ticket(
                        session,
                        actor=self.user,
                        key=self.key,
                        comment=request.comment,
                        changes=changes,
                        attachments=attachments,
                    )
        except DeskError as error:
            self.report(error)
            return
        self.app.notify(f"{self.key} saved", markup=False)
        self.app.call_from_thread(self.load)
