"""The ticket screen: fields, ticket data, customer comment, Comments and Log tabs, and edits.

Each action key opens a ``ChangeDialog`` (every update needs a comment); the dialog stores the
change in a worker through ``unit_of_work`` so workflows react, and stays open with the reason
when it is refused (a missing comment, a file too big...). The ticket is read again after a
save and whenever the desk changed. Customer name, email and created date are shown as plain
text: they are never editable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy import Engine
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Static, TabbedContent, TabPane

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import DeskError
from cxdesk.screens.base import DeskScreen, shown_time
from cxdesk.store.db import read_session
from cxdesk.store.directory import list_statuses, list_teams, team_members
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
from cxdesk.widgets.change_dialog import ChangeDialog, ChangeRequest, SaveChange

FIELDS = (
    ("Status", "status"),
    ("Priority", "priority"),
    ("Team", "team"),
    ("Origin team", "origin_team"),
    ("Owner", "owner"),
    ("Source", "source"),
    ("Channel", "channel"),
    ("Tags", "tags"),
)
# Never editable: records stay true.
CUSTOMER_FIELDS = (
    ("Customer", "customer_name"),
    ("Email", "customer_email"),
    ("Phone", "customer_phone"),
    ("Created", "created_at"),
    ("Updated", "updated_at"),
    ("Resolved", "resolved_at"),
)
NOBODY = "(nobody: back to the queue)"


@dataclass(frozen=True)
class TicketView:
    """One ticket as the screen shows it, with the choices its edit dialogs offer."""

    record: dict[str, object]
    data: list[tuple[str, str]]
    comments: list[dict[str, object]]
    log: list[dict[str, object]]
    statuses: list[str]
    members_by_team: dict[str, list[str]]
    """Every team (in name order) with its members' usernames: the owner choices."""

    @property
    def team_members(self) -> list[str]:
        return self.members_by_team.get(str(self.record["team"]), [])


def read_ticket_view(engine: Engine, key: str) -> TicketView:
    with read_session(engine) as session:
        ticket = get_ticket(session, key)
        return TicketView(
            record=tickets_to_dicts(session, [ticket])[0],
            data=ticket_data(session, ticket),
            comments=comment_rows(session, ticket),
            log=ticket_log(session, ticket),
            statuses=[s.name for s in list_statuses(session)],
            members_by_team={
                t.name: [u.username for u in team_members(session, t)] for t in list_teams(session)
            },
        )


def field_text(record: dict[str, object], name: str) -> str:
    value = record[name]
    if name.endswith("_at"):
        return shown_time(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


class TicketScreen(DeskScreen):
    DEFAULT_CSS = """
    TicketScreen #ticket-body { height: 1fr; padding: 0 1; }
    TicketScreen #ticket-title { text-style: bold; margin-bottom: 1; }
    TicketScreen #columns { height: auto; }
    TicketScreen #columns > Vertical { width: 1fr; height: auto; padding-right: 2; }
    TicketScreen .section { text-style: bold; }
    TicketScreen #comment-section { margin-top: 1; }
    TicketScreen TabbedContent { height: auto; min-height: 10; margin-top: 1; }
    TicketScreen DataTable { height: auto; max-height: 20; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("s", "status", "Status"),
        Binding("p", "priority", "Priority"),
        Binding("t", "team", "Team+owner"),
        Binding("o", "owner", "Owner"),
        Binding("c", "comment", "Comment"),
        Binding("r", "resolve", "Resolve"),
        Binding("e", "escalate", "Escalate"),
        Binding("l", "switch_tab", "Comments/Log", show=False),
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
            with Horizontal(id="columns"):
                with Vertical():
                    yield Label("Ticket", classes="section")
                    yield Static("", id="fields", markup=False)
                with Vertical():
                    yield Label("Customer (read-only)", classes="section")
                    yield Static("", id="customer", markup=False)
                with Vertical():
                    yield Label("Ticket data", classes="section")
                    yield Static("", id="data", markup=False)
            yield Label("Customer comment", classes="section", id="comment-section")
            yield Static("", id="customer-comment", markup=False)
            with TabbedContent(id="tabs"):
                with TabPane("Comments", id="tab-comments"):
                    comments: DataTable[str] = DataTable(id="comments", cursor_type="row")
                    comments.add_columns("At", "Author", "Comment")
                    yield comments
                with TabPane("Log", id="tab-log"):
                    log: DataTable[str] = DataTable(id="log", cursor_type="row")
                    log.add_columns("At", "Who", "What", "From", "To", "Detail")
                    yield log
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def reload(self) -> None:
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
        if view == self.view:
            return  # nothing changed: keep the tables' cursors where they are
        self.view = view
        record = view.record
        self.query_one("#ticket-title", Label).update(f"{record['key']}  {record['title']}")
        self.query_one("#fields", Static).update(
            "\n".join(f"{label:12} {field_text(record, name)}" for label, name in FIELDS)
        )
        self.query_one("#customer", Static).update(
            "\n".join(f"{label:9} {field_text(record, name)}" for label, name in CUSTOMER_FIELDS)
        )
        width = max((len(name) for name, _ in view.data), default=0)
        data = "\n".join(f"{name:{width}} {value}" for name, value in view.data)
        self.query_one("#data", Static).update(data or "(none)")
        self.query_one("#customer-comment", Static).update(
            str(record["customer_comment"] or "(none)")
        )
        comments: DataTable[str] = self.query_one("#comments", DataTable)
        comments.clear()
        for row in view.comments:
            comments.add_row(
                shown_time(row["at"]), str(row["author"] or "system"), str(row["body"])
            )
        log: DataTable[str] = self.query_one("#log", DataTable)
        log.clear()
        for event in view.log:
            what = f"{event['kind']} {event['field'] or ''}".strip()
            log.add_row(
                shown_time(event["at"]),
                str(event["who"]),
                what,
                str(event["from"] or ""),
                str(event["to"] or ""),
                str(event["detail"] or ""),
            )

    # -- actions: each asks for a comment in a dialog that saves it ---------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_switch_tab(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = "tab-log" if tabs.active == "tab-comments" else "tab-comments"

    def _open_dialog(self, title: str, save: SaveChange, **options: object) -> None:
        if self.view is None:
            self.notify("The ticket is still loading", severity="warning")
            return

        def saved(request: ChangeRequest | None) -> None:
            if request is not None:
                self.notify(f"{self.key} saved", markup=False)
                self.load()

        self.app.push_screen(ChangeDialog(title, save=save, **options), saved)  # type: ignore[arg-type]

    def _ask(self, field: str, title: str, choices: list[tuple[str, str]]) -> None:
        current = str(self.view.record.get(field) or "") if self.view else ""

        def save(request: ChangeRequest) -> None:
            self.store_change({field: request.value or ""}, request)

        self._open_dialog(title, save, choices=choices, current=current)

    def action_status(self) -> None:
        statuses = self.view.statuses if self.view else []
        self._ask("status", f"Status of {self.key}", [(s, s) for s in statuses])

    def action_priority(self) -> None:
        self._ask("priority", f"Priority of {self.key}", [(p, p) for p in Priority])

    def action_owner(self) -> None:
        members = self.view.team_members if self.view else []
        choices = [(NOBODY, ""), *((m, m) for m in members)]
        self._ask("owner", f"Owner of {self.key} (members of its team)", choices)

    def action_team(self) -> None:
        if self.view is None:
            return
        record = self.view.record

        def save(request: ChangeRequest) -> None:
            self.store_change({"team": request.value or "", "owner": request.owner}, request)

        self._open_dialog(
            f"Move {self.key} to team, with its owner",
            save,
            choices=[(t, t) for t in self.view.members_by_team],
            current=str(record["team"]),
            members_by_team=self.view.members_by_team,
            current_owner=str(record["owner"] or ""),
        )

    def action_resolve(self) -> None:
        self._open_dialog(f"Resolve {self.key}", partial(self.store_change, {"status": "resolved"}))

    def action_escalate(self) -> None:
        self._open_dialog(
            f"Escalate {self.key}", partial(self.store_change, {"status": "escalated"})
        )

    def action_comment(self) -> None:
        self._open_dialog(
            f"Comment on {self.key}", partial(self.store_change, None), with_attachments=True
        )

    def store_change(self, changes: dict[str, str | None] | None, request: ChangeRequest) -> None:
        """Store one change with its comment (blocking: the dialog runs it in a worker).

        ``changes`` None: a plain comment (with attachments); otherwise an update.
        """
        paths = [Path(p).expanduser() for p in request.attachment_paths]
        attachments = read_attachment_files(paths)
        with unit_of_work(self.engine) as session:
            if changes is None:
                add_comment(
                    session, actor=self.user, key=self.key, body=request.comment,
                    attachments=attachments,
                )  # fmt: skip
            else:
                update_ticket(
                    session, actor=self.user, key=self.key, comment=request.comment,
                    changes=changes, attachments=attachments,
                )  # fmt: skip
