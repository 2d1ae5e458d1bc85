"""The admin's campaigns screen: past campaigns, and a form that previews and sends a new one.

The form (name, contact filters, team, assignee, subject, description, status) builds a
``CampaignSpec``, as ``cxdesk campaign create`` does. Preview (``ctrl+r``, or Enter in any
field) runs ``plan_campaign`` and shows the count and the first tickets, writing nothing.
Send (``ctrl+s``) previews again, asks to confirm with the count, then runs ``send_campaign``
inside ``unit_of_work``: every ticket, its workflows and the saved view commit together, or
nothing does. A refusal (bad filter, taken name, more than 1,000 contacts...) is one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, Label, Select

from cxdesk import labels
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import ValidationFailed
from cxdesk.i18n import N_, _, ngettext
from cxdesk.labels import label, owner_choices
from cxdesk.screens.background import Failure
from cxdesk.screens.base import DeskScreen, shown_time
from cxdesk.store.campaigns import (
    CampaignPlan,
    CampaignSpec,
    campaign_rows,
    plan_campaign,
    send_campaign,
    view_name,
)
from cxdesk.store.contacts import parse_filters
from cxdesk.store.db import read_session
from cxdesk.store.directory import FormChoices, form_choices
from cxdesk.text import printable
from cxdesk.widgets.confirm_dialog import ConfirmDialog
from cxdesk.widgets.table import DeskTable

NOBODY = N_("(nobody: the tickets wait in the queue)")
FILTER_HINT = N_("plan=enterprise, renewal<2027-01-01 (comma-separated; all must hold)")
CAMPAIGN_COLUMNS = (N_("name"), N_("subject"), N_("team"), N_("status"), N_("tickets"),
                    N_("created"))  # fmt: skip
PREVIEW_COLUMNS = (N_("customer"), N_("email"), N_("subject"))


@dataclass(frozen=True)
class CampaignForm:
    """What is typed and chosen in the form, as text."""

    name: str
    filters: str
    team: str
    assignee: str
    subject: str
    description: str
    status: str

    def spec(self) -> CampaignSpec:
        """The campaign to plan or send; a bad filter or a missing team is a DeskError."""
        texts = [part for part in re.split(r"[,\n]", self.filters) if part.strip()]
        filters = parse_filters(texts)
        if not self.team:
            raise ValidationFailed({"team": _("is required: choose one")})
        return CampaignSpec(
            name=self.name,
            filters=filters,
            subject=self.subject,
            team=self.team,
            description=self.description,
            status=self.status or "new",
            assignee=self.assignee or None,
        )


class CampaignsScreen(DeskScreen):
    DEFAULT_CSS = """
    CampaignsScreen #campaign-body { height: 1fr; }
    CampaignsScreen #campaign-form { width: 64; max-width: 60%; padding: 0 2; }
    CampaignsScreen #campaign-side { width: 1fr; padding: 0 1; }
    CampaignsScreen .question { margin-top: 1; text-style: bold; }
    CampaignsScreen .hint { color: $text-muted; margin-top: 1; }
    CampaignsScreen #outcome { width: 100%; height: auto; }
    CampaignsScreen #outcome.-refused { color: $error; }
    CampaignsScreen #outcome.-sent { color: $success; }
    CampaignsScreen #preview { height: auto; max-height: 9; }
    CampaignsScreen #campaigns { height: 1fr; }
    """
    BINDINGS = [
        Binding("ctrl+r", "preview", N_("Preview")),
        Binding("ctrl+s", "send", N_("Send")),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.choices = FormChoices([], {})
        self.plan: CampaignPlan | None = None
        """The last preview that succeeded (None after a refusal or a send)."""
        self.sending = False
        """A send is being confirmed or written: a second one waits for it."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="campaign-body"):
            with VerticalScroll(id="campaign-form"):
                yield Label(_("New campaign"), classes="question")
                for label, widget in (
                    (_("Name * (unique; tags every ticket)"),
                     Input(placeholder=_("Renewal 2027"), id="name")),
                    (_("Contacts *"), Input(placeholder=_(FILTER_HINT), id="filters")),
                    (_("Team *"), Select[str]([], prompt=_("Choose a team"), id="team")),
                    (_("Assignee"), Select[str]([], prompt=_(NOBODY), id="assignee")),
                    (_("Subject *"),
                     Input(placeholder=_("Your renewal is coming up"), id="subject")),
                    (_("Description"),
                     Input(placeholder=_("Stored on every ticket"), id="description")),
                    (_("Status"), Select[str]([], prompt=labels.label("new"), id="status")),
                ):  # fmt: skip
                    yield Label(label, classes="question", markup=False)
                    yield widget
                yield Label(
                    _("Enter or ctrl+r previews · ctrl+s sends (asks first)"),
                    classes="hint",
                )
            with Vertical(id="campaign-side"):
                yield Label(_("Preview"), classes="question")
                yield Label(_("Fill the form, then preview."), id="outcome", markup=False)
                preview: DataTable[str] = DeskTable(id="preview", cursor_type="row")
                preview.add_columns(*(_(column) for column in PREVIEW_COLUMNS))
                yield preview
                yield Label(_("Campaigns"), classes="question")
                campaigns: DataTable[str] = DeskTable(
                    id="campaigns", cursor_type="row", zebra_stripes=True
                )
                campaigns.add_columns(*(_(column) for column in CAMPAIGN_COLUMNS))
                yield campaigns
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        self.read_then(form_choices, self._fill_choices)
        self.reload()

    # -- loading -------------------------------------------------------------------------------

    def _fill_choices(self, choices: FormChoices) -> None:
        self.choices = choices
        self.query_one("#team", Select).set_options([(t, t) for t in choices.members_by_team])
        status = self.query_one("#status", Select)
        status.set_options([(label(s), s) for s in choices.statuses])
        if "new" in choices.statuses:
            status.value = "new"

    def reload(self) -> None:
        self.load_campaigns()

    def load_campaigns(self) -> None:
        def read() -> list[tuple[str, str, str, str, int, str]]:
            with read_session(self.engine) as session:
                return campaign_rows(session)

        self.in_thread(read, self._show_campaigns, group="campaign-list", reading=True)

    def _show_campaigns(self, rows: list[tuple[str, str, str, str, int, str]]) -> None:
        table: DataTable[str] = self.query_one("#campaigns", DataTable)
        table.clear()
        for row in reversed(rows):  # the newest first
            *shown, created = (str(cell) for cell in row)
            table.add_row(*shown, shown_time(created), key=row[0])

    @on(Select.Changed, "#team")
    def _team_changed(self, event: Select.Changed) -> None:
        team = "" if event.value is Select.NULL else str(event.value)
        members = self.choices.members_by_team.get(team, [])
        self.query_one("#assignee", Select).set_options(owner_choices(members, self.choices.names))

    # -- preview and send ----------------------------------------------------------------------

    def form(self) -> CampaignForm:
        def text(widget_id: str) -> str:
            widget = self.query_one(f"#{widget_id}")
            if isinstance(widget, Select):
                return "" if widget.is_blank() else str(widget.value)
            assert isinstance(widget, Input)
            return widget.value

        return CampaignForm(
            name=text("name"),
            filters=text("filters"),
            team=text("team"),
            assignee=text("assignee"),
            subject=text("subject"),
            description=text("description"),
            status=text("status"),
        )

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_preview()

    def action_preview(self) -> None:
        if not self.sending:
            self._set_outcome(_("Counting…"))
            self.preview(self.form(), then_confirm=False)

    def action_send(self) -> None:
        if not self.sending:
            self.sending = True
            self._set_outcome(_("Counting…"))
            self.preview(self.form(), then_confirm=True)

    def preview(self, form: CampaignForm, *, then_confirm: bool) -> None:
        """Plan the campaign (writes nothing); then show it, and ask to send when sending."""

        def plan() -> CampaignPlan:
            spec = form.spec()
            with read_session(self.engine) as session:
                return plan_campaign(session, spec)

        self.in_thread(plan, lambda plan: self._show_plan(plan, then_confirm), group="campaign",
                       reading=True,
                       failed=lambda failure: self._refused(failure.line))  # fmt: skip

    def _show_plan(self, plan: CampaignPlan, then_confirm: bool) -> None:
        self.plan = plan
        spec = plan.spec
        would = ngettext(
            "Would create {n} ticket for team {team}, tagged {name}, status {status}, "
            "owner {owner}: {subject}",
            "Would create {n} tickets for team {team}, tagged {name}, status {status}, "
            "owner {owner}: {subject}",
            plan.count,
        ).format(n=plan.count, team=spec.team, name=repr(spec.name), status=spec.status,
                 owner=spec.assignee or _("nobody"), subject=spec.subject)  # fmt: skip
        if plan.count > len(plan.first):
            would += " " + _("(first {n} below)").format(n=len(plan.first))
        self._set_outcome(would)
        table: DataTable[str] = self.query_one("#preview", DataTable)
        table.clear()
        for contact in plan.first:
            table.add_row(contact.name, contact.email, spec.subject)
        if then_confirm:
            question = ngettext(
                "Send campaign {name}? It creates {n} ticket for team {team} and the saved "
                "view {view}.",
                "Send campaign {name}? It creates {n} tickets for team {team} and the saved "
                "view {view}.",
                plan.count,
            ).format(name=repr(spec.name), n=plan.count, team=spec.team,
                     view=repr(plan.view_name))  # fmt: skip
            confirm = ConfirmDialog(question, yes=_("Enter or y: send"))
            self.app.push_screen(confirm, self._confirmed)

    def _confirmed(self, confirmed: bool | None) -> None:
        if not confirmed or self.plan is None:
            self.sending = False
            self._set_outcome(_("Not sent."))
            return
        self._set_outcome(_("Sending…"))
        self.send(self.plan.spec)

    def send(self, spec: CampaignSpec) -> None:
        """Every ticket, its workflows and the saved view in one transaction, or none."""

        def send() -> tuple[str, int]:
            with unit_of_work(self.engine) as session:
                campaign, tickets = send_campaign(session, actor=self.user, spec=spec)
                return campaign.name, len(tickets)

        def refused(failure: Failure) -> None:
            self._refused(_("Nothing sent: {error}").format(error=failure.line))

        self.in_thread(send, self._sent, group="campaign", failed=refused)

    def _sent(self, name_and_created: tuple[str, int]) -> None:
        name, created = name_and_created
        self.sending = False
        self.plan = None
        message = ngettext(
            "Created {n} ticket; saved view {view}",
            "Created {n} tickets; saved view {view}",
            created,
        ).format(n=created, view=repr(view_name(name)))
        self._set_outcome(message, state="-sent")
        self.query_one("#preview", DataTable).clear()
        self.notify(message, markup=False)
        self.reload()

    def _refused(self, message: str) -> None:
        self.sending = False
        self.plan = None
        self.query_one("#preview", DataTable).clear()
        self._set_outcome(message, state="-refused")

    def _set_outcome(self, text: str, *, state: str = "") -> None:
        outcome = self.query_one("#outcome", Label)
        outcome.update(printable(text))
        outcome.set_class(state == "-refused", "-refused")
        outcome.set_class(state == "-sent", "-sent")
