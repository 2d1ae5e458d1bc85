"""The manual ticket form (``ctrl+n``): customer email, priority, status, team, owner, comment.

The choices are read once in a worker (statuses, teams and each team's members); Enter in any
text field creates the ticket through ``unit_of_work`` and opens it. Escape goes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Input, Label, Select

from cxdesk import labels
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import ValidationFailed
from cxdesk.i18n import N_, _
from cxdesk.screens.base import DeskScreen
from cxdesk.store.directory import FormChoices, form_choices
from cxdesk.store.models import Priority
from cxdesk.store.tickets import create_manual_ticket

# Store field name -> the form's widget id, for showing each error under its field.
FIELD_IDS = {
    "customer_email": "email",
    "customer_name": "name",
    "comment": "comment",
    "priority": "priority",
    "status": "status",
    "team": "team",
    "owner": "owner",
}
NOBODY = N_("(nobody: waits in the queue)")


class NewTicketScreen(DeskScreen):
    DEFAULT_CSS = """
    NewTicketScreen #new-form { padding: 0 2; }
    NewTicketScreen .question { margin-top: 1; text-style: bold; }
    NewTicketScreen .field-error { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "back", N_("Back"))]

    def __init__(self) -> None:
        super().__init__()
        self.choices = FormChoices([], {})

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="new-form"):
            yield Label(_("New ticket"), classes="question")
            for label, widget in (
                (_("Customer email *"), Input(placeholder="ada@example.com", id="email")),
                (_("Customer name"), Input(placeholder=_("Ada Lovelace"), id="name")),
                (
                    _("Priority"),
                    Select(
                        [(labels.label(p), p) for p in Priority],
                        value=Priority.medium,
                        allow_blank=False,
                        id="priority",
                    ),
                ),  # fmt: skip
                (_("Status"), Select[str]([], prompt=labels.label("new"), id="status")),
                (_("Team *"), Select[str]([], prompt=_("Choose a team"), id="team")),
                (_("Owner"), Select[str]([], prompt=_(NOBODY), id="owner")),
                (_("Comment *"), Input(placeholder=_("What the customer needs"), id="comment")),
            ):
                yield Label(label, classes="question")
                yield widget
                yield Label("", id=f"err-{widget.id}", classes="field-error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#email", Input).focus()
        self.read_then(form_choices, self._fill_choices)

    def _fill_choices(self, choices: FormChoices) -> None:
        self.choices = choices
        self.query_one("#status", Select).set_options(
            [(labels.label(s), s) for s in choices.statuses]
        )
        self.query_one("#team", Select).set_options([(t, t) for t in choices.members_by_team])

    @on(Select.Changed, "#team")
    def _team_changed(self, event: Select.Changed) -> None:
        team = "" if event.value is Select.NULL else str(event.value)
        members = self.choices.members_by_team.get(team, [])
        owner = self.query_one("#owner", Select)
        owner.set_options(labels.owner_choices(members, self.choices.names))
        if len(members) == 1:
            owner.value = members[0]

    def _value(self, widget_id: str) -> str:
        widget = self.query_one(f"#{widget_id}")
        if isinstance(widget, Select):
            return "" if widget.is_blank() else str(widget.value)
        assert isinstance(widget, Input)
        return widget.value

    @on(Input.Submitted)
    def _submit(self) -> None:
        form = {name: self._value(name) for name in FIELD_IDS.values()}
        self.create(form)

    def create(self, form: dict[str, str]) -> None:
        self.in_thread(
            partial(self._create, form),
            self._created,
            group="create",
            failed=partial(self.form_refused, show_errors=self._show_errors),
        )

    def _create(self, form: dict[str, str]) -> str:
        errors: dict[str, str] = {}
        if not form["team"]:
            errors["team"] = _("is required")
        if errors:
            raise ValidationFailed(errors)
        with unit_of_work(self.engine) as session:
            key = create_manual_ticket(
                session,
                actor=self.user,
                customer_email=form["email"],
                customer_name=form["name"],
                team=form["team"],
                comment=form["comment"],
                priority=form["priority"] or Priority.medium,
                status=form["status"] or "new",
                owner=form["owner"] or None,
            ).key
        assert key is not None
        return key

    def _show_errors(self, errors: Mapping[str, str]) -> None:
        for field, widget_id in FIELD_IDS.items():
            self.query_one(f"#err-{widget_id}", Label).update(errors.get(field, ""))

    def _created(self, key: str) -> None:
        self.notify(_("Created {key}").format(key=key), markup=False)
        self.dismiss()
        self.desk.open_ticket(key)

    def action_back(self) -> None:
        self.dismiss()
