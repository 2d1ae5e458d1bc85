"""Proactive campaigns: a ticket for every contact a filter picks, tagged with the campaign.

``plan_campaign`` checks everything and counts the contacts (the preview); ``send_campaign``
writes the campaign, one ticket per contact (source ``campaign``, tagged with the campaign's
unique name, its events recorded so ``ticket.created`` workflows run) and a shared saved view
of those tickets, all in the caller's transaction: every ticket or none. More than
``MAX_TICKETS`` contacts is refused before anything is written, with the advice to split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, col, select

from cxdesk.errors import Conflict, DeskError, ValidationFailed
from cxdesk.i18n import _
from cxdesk.store.contacts import ContactFilter, count_contacts, list_contacts
from cxdesk.store.directory import get_status, get_team, get_user, is_member, require_admin
from cxdesk.store.models import (
    Campaign,
    Channel,
    Contact,
    SavedView,
    Source,
    Team,
    Ticket,
    TicketTag,
    User,
)
from cxdesk.store.tickets import TicketDraft, create_ticket
from cxdesk.store.views import TicketFilter
from cxdesk.text import text_problem

MAX_TICKETS = 1000
MAX_NAME = 90  # the saved view is named "Campaign: <name>", at most 100 characters
PREVIEW_ROWS = 5


@dataclass(frozen=True)
class CampaignSpec:
    """What an admin fills in: the campaign's name (its tag), who, and the tickets' fields."""

    name: str
    filters: Sequence[ContactFilter]
    subject: str
    team: str
    description: str = ""
    status: str = "new"
    assignee: str | None = None


@dataclass
class CampaignPlan:
    """The preview: how many tickets, and the first few contacts they are for."""

    spec: CampaignSpec
    count: int
    first: list[Contact] = field(default_factory=list)

    @property
    def view_name(self) -> str:
        return view_name(self.spec.name)


def view_name(campaign: str) -> str:
    return f"Campaign: {campaign}"


def clean_spec(spec: CampaignSpec) -> CampaignSpec:
    """The spec with its text tidied, or ValidationFailed naming every bad field."""
    name, subject = " ".join(spec.name.split()), " ".join(spec.subject.split())
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = _("is required")
    elif len(name) > MAX_NAME:
        errors["name"] = _("must be at most {n} characters").format(n=MAX_NAME)
    elif (problem := text_problem(spec.name)) is not None:
        errors["name"] = problem
    if not subject:
        errors["subject"] = _("is required")
    elif len(subject) > 300:
        errors["subject"] = _("must be at most {n} characters").format(n=300)
    elif (problem := text_problem(spec.subject)) is not None:
        errors["subject"] = problem
    if not spec.filters:
        errors["filter"] = _("at least one is required (e.g. --filter plan=enterprise)")
    if errors:
        raise ValidationFailed(errors)
    return CampaignSpec(
        name=name,
        filters=list(spec.filters),
        subject=subject,
        team=spec.team,
        description=spec.description.strip(),
        status=spec.status,
        assignee=spec.assignee or None,
    )


def plan_campaign(session: Session, spec: CampaignSpec) -> CampaignPlan:
    """Check the campaign and count its contacts; writes nothing."""
    spec = clean_spec(spec)
    if session.exec(select(Campaign).where(Campaign.name == spec.name)).first() is not None:
        raise Conflict(
            _("A campaign named {spec!r} already exists: pick another name").format(spec=spec.name)
        )
    tagged = session.exec(
        select(func.count()).select_from(TicketTag).where(TicketTag.tag == spec.name)
    ).one()
    if tagged:
        raise Conflict(
            _("{n} ticket(s) already carry the tag {tag!r}: pick another campaign name").format(
                n=tagged, tag=spec.name
            )
        )
    named_view = select(SavedView).where(
        col(SavedView.owner_id).is_(None), SavedView.name == view_name(spec.name)
    )
    if session.exec(named_view).first() is not None:
        raise Conflict(
            _("A shared view named {name!r} already exists").format(name=view_name(spec.name))
        )
    team = get_team(session, spec.team)
    get_status(session, spec.status)
    if spec.assignee:
        assignee = get_user(session, spec.assignee)
        if not is_member(session, assignee, team.id):
            raise ValidationFailed(
                {
                    "assignee": _("{assignee} is not on team {team}").format(
                        assignee=assignee.username, team=team.name
                    )
                }
            )
    count = count_contacts(session, spec.filters)
    described = " ".join(str(f) for f in spec.filters)
    if count == 0:
        raise DeskError(
            _("No contacts match {described}: nothing to send").format(described=described)
        )
    if count > MAX_TICKETS:
        raise DeskError(
            f"{count:,} contacts match {described}; a campaign may create at most "
            f"{MAX_TICKETS:,} tickets: split it into campaigns of {MAX_TICKETS:,} or fewer "
            "with narrower filters (e.g. add --filter region=...)"
        )
    first = list(list_contacts(session, spec.filters, limit=PREVIEW_ROWS))
    return CampaignPlan(spec=spec, count=count, first=first)


def campaign_draft(spec: CampaignSpec, contact: Contact) -> TicketDraft:
    """The ticket a campaign opens for one contact; its attributes become ticket data."""
    data = [("Campaign", spec.name)]
    if spec.description:
        data.append(("Description", spec.description))
    data += [(str(k)[:100], str(v)) for k, v in sorted((contact.attributes or {}).items())]
    return TicketDraft(
        title=spec.subject,
        team=spec.team,
        status=spec.status,
        customer_name=contact.name,
        customer_email=contact.email,
        customer_phone=contact.phone or "",
        customer_language=contact.language,
        data=data,
        tags=[spec.name],
        source=Source.campaign,
        channel=Channel.email,
        owner=spec.assignee,
    )


def send_campaign(
    session: Session, *, actor: User | None, spec: CampaignSpec
) -> tuple[Campaign, list[Ticket]]:
    """Create the campaign, its tickets and its saved view in the caller's transaction.

    Run it in ``unit_of_work`` so the tickets' ``ticket.created`` workflows run before the
    commit: if any ticket or workflow fails, the caller's rollback leaves no ticket at all.
    """
    require_admin(actor)
    plan = plan_campaign(session, spec)
    spec = plan.spec
    contacts = list_contacts(session, spec.filters, limit=MAX_TICKETS + 1)
    if len(contacts) > MAX_TICKETS:  # contacts imported since the count: still refuse
        raise DeskError(
            _("More than {max_tickets:,} contacts match now: split the campaign").format(
                max_tickets=MAX_TICKETS
            )
        )
    team = get_team(session, spec.team)
    assignee = get_user(session, spec.assignee) if spec.assignee else None
    campaign = Campaign(
        name=spec.name,
        subject=spec.subject,
        description=spec.description,
        status=spec.status,
        team_id=team.id,
        assignee_id=assignee.id if assignee else None,
        filters={"contacts": [str(f) for f in spec.filters]},
        created_by_id=actor.id if actor else None,
    )
    session.add(campaign)
    session.add(
        SavedView(
            name=view_name(spec.name),
            owner_id=None,  # shared: everyone on the desk sees the campaign's tickets
            filters=TicketFilter(last_days=None, tag=spec.name).to_json(),
        )
    )
    session.flush()
    tickets = [
        create_ticket(session, actor=actor, draft=campaign_draft(spec, contact))
        for contact in contacts
    ]
    return campaign, tickets


def campaign_rows(session: Session) -> list[tuple[str, str, str, str, int, str]]:
    """Each campaign: name, subject, team, status, tickets carrying its tag, created."""
    counts = dict(
        session.exec(select(TicketTag.tag, func.count()).group_by(col(TicketTag.tag))).all()
    )
    teams = {t.id: t.name for t in session.exec(select(Team)).all()}
    return [
        (
            c.name,
            c.subject,
            teams.get(c.team_id, ""),
            c.status,
            counts.get(c.name, 0),
            c.created_at.isoformat()[:16],
        )
        for c in session.exec(select(Campaign).order_by(col(Campaign.created_at))).all()
    ]
