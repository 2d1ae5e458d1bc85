"""The contact directory: the customers a proactive campaign can reach.

A contact is a name, a unique email (stored lower-case), an optional phone (E.164), an
optional language (a code of ``cxdesk.i18n.LANGUAGES``: a campaign writes to them in it) and any
other attributes (plan, renewal date, region...) as text; attribute names are lower-case, so
"Plan" and "plan" are one attribute in files and filters alike. Contacts come from CSV files:
``import_contacts`` checks every row, keeps the good ones (a known email is updated) and
reports each bad one by its line. ``parse_filters`` and ``contact_query`` pick contacts by
attribute; campaigns use the same filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from cxdesk.errors import DeskError, ValidationFailed
from cxdesk.i18n import _
from cxdesk.store.csv_files import CsvFile, ImportReport, RowProblem
from cxdesk.store.customer_language import customer_language_code
from cxdesk.store.directory import get_setting, require_admin
from cxdesk.store.models import Contact, User
from cxdesk.store.phones import normalise_phone
from cxdesk.text import text_problem

CONTACT_FIELDS = ("name", "email", "phone", "language")
MAX_NAME = 200
MAX_ATTRIBUTE = 1000
# Longest first, so "<=" is not read as "<" followed by "=value".
OPERATORS = ("!=", ">=", "<=", "=", "<", ">")


# -- filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactFilter:
    """``plan=enterprise``: ``=`` and ``!=`` ignore case; ``<``, ``<=``, ``>``, ``>=`` compare
    the text, which orders ISO dates (``renewal<2027-01-01``) but not numbers of different
    lengths. A contact without the attribute counts as having it empty."""

    name: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    def condition(self) -> ColumnElement[bool]:
        if self.name in CONTACT_FIELDS:
            column: Any = func.coalesce(getattr(Contact, self.name), "")
        else:
            column = func.coalesce(col(Contact.attributes)[self.name].as_string(), "")
        if self.op in ("=", "!="):
            left, right = func.lower(column), self.value.lower()
            return left == right if self.op == "=" else left != right
        comparisons = {
            "<": column < self.value,
            "<=": column <= self.value,
            ">": column > self.value,
            ">=": column >= self.value,
        }
        result: ColumnElement[bool] = comparisons[self.op]
        return result


def parse_filter(text: str) -> ContactFilter:
    """``ATTR=VALUE`` (or ``!=``, ``<``, ``<=``, ``>``, ``>=``) into a filter."""
    positions = [(text.find(op), -len(op), op) for op in OPERATORS if op in text]
    if not positions:
        raise DeskError(
            _("--filter takes ATTR=VALUE (or !=, <, <=, >, >=), got {text!r}").format(text=text)
        )
    index, _length, op = min(positions)
    name, value = text[:index].strip(), text[index + len(op) :].strip()
    if not name:
        raise DeskError(
            _("--filter needs an attribute name before {op!r}: {text!r}").format(op=op, text=text)
        )
    return ContactFilter(name=name.lower(), op=op, value=value)


def parse_filters(texts: Sequence[str]) -> list[ContactFilter]:
    return [parse_filter(text) for text in texts]


def contact_query(filters: Sequence[ContactFilter]) -> SelectOfScalar[Contact]:
    """Contacts matching every filter, in a stable order (by email)."""
    statement = select(Contact)
    for flt in filters:
        statement = statement.where(flt.condition())
    return statement.order_by(col(Contact.email))


def count_contacts(session: Session, filters: Sequence[ContactFilter]) -> int:
    subquery = contact_query(filters).order_by(None).subquery()
    return int(session.exec(select(func.count()).select_from(subquery)).one())


def list_contacts(
    session: Session, filters: Sequence[ContactFilter] = (), *, limit: int | None = None
) -> Sequence[Contact]:
    statement = contact_query(filters)
    if limit is not None:
        statement = statement.limit(limit)
    return session.exec(statement).all()


def contact_to_dict(contact: Contact) -> dict[str, Any]:
    return {
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "language": contact.language,
        "attributes": dict(contact.attributes or {}),
        "created_at": contact.created_at.isoformat(),
    }


# -- import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactRow:
    """A checked row, ready to store."""

    line: int
    name: str
    email: str
    phone: str | None
    language: str | None
    attributes: dict[str, str]


def check_contact_rows(
    csv_file: CsvFile, *, phone_region: str
) -> tuple[list[ContactRow], list[RowProblem]]:
    """The rows that can be stored, and a problem for each one that cannot."""
    lowered = {column.lower(): column for column in csv_file.columns}
    if "email" not in lowered:
        raise DeskError(
            _("The contacts file needs an 'email' column (and 'name'; 'phone' is optional)")
        )
    if "name" not in lowered:
        raise DeskError(_("The contacts file needs a 'name' column"))
    extra = [c for c in csv_file.columns if c.lower() not in CONTACT_FIELDS]
    for column in extra:
        if (problem := text_problem(column)) is not None:
            raise DeskError(_("The contacts file's column names {problem}").format(problem=problem))
    good: list[ContactRow] = []
    problems = list(csv_file.problems)
    first_line: dict[str, int] = {}
    for row in csv_file.rows:
        errors: list[str] = []
        raw_name = row.values[lowered["name"]]
        name = " ".join(raw_name.split())
        if not name:
            errors.append("name is required")
        elif len(name) > MAX_NAME:
            errors.append(f"name is longer than {MAX_NAME} characters")
        elif (problem := text_problem(raw_name)) is not None:
            errors.append(f"name {problem}")
        email = ""
        raw_email = row.values[lowered["email"]]
        if not raw_email:
            errors.append("email is required")
        else:
            try:
                email = validate_email(raw_email, check_deliverability=False).normalized.lower()
            except EmailNotValidError as exc:
                errors.append(f"email {raw_email!r} is not valid ({exc})")
        phone = None
        raw_phone = row.values.get(lowered.get("phone", ""), "")
        if raw_phone:
            try:
                phone = normalise_phone(raw_phone, phone_region)
            except ValueError as exc:
                errors.append(f"phone {raw_phone!r}: {exc}")
        language = None
        raw_language = row.values.get(lowered.get("language", ""), "")
        try:
            language = customer_language_code(raw_language)
        except ValidationFailed as exc:
            errors += list(exc.errors.values())
        attributes = {c.lower(): row.values[c] for c in extra if row.values[c]}
        errors += [
            f"{c} is longer than {MAX_ATTRIBUTE} characters"
            for c, v in attributes.items()
            if len(v) > MAX_ATTRIBUTE
        ]
        if email and email in first_line and not errors:
            errors.append(f"email {email} is already on line {first_line[email]}")
        if errors:
            problems.append(RowProblem(row.line, "; ".join(errors)))
            continue
        first_line[email] = row.line
        good.append(ContactRow(row.line, name, email, phone, language, attributes))
    problems.sort(key=lambda p: p.line)
    return good, problems


def import_contacts(session: Session, *, actor: User | None, csv_file: CsvFile) -> ImportReport:
    """Store every good row of ``csv_file`` (a known email is updated: name, phone, and its
    attributes merged); report the bad rows by line. Admin only."""
    require_admin(actor)
    rows, problems = check_contact_rows(csv_file, phone_region=get_setting(session, "phone_region"))
    report = ImportReport(problems=problems)
    emails = [row.email for row in rows]
    existing: dict[str, Contact] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        for known in session.exec(select(Contact).where(col(Contact.email).in_(chunk))).all():
            existing[known.email] = known
    for row in rows:
        contact = existing.get(row.email)
        if contact is None:
            session.add(
                Contact(
                    name=row.name,
                    email=row.email,
                    phone=row.phone,
                    language=row.language,
                    attributes=row.attributes,
                )
            )
            report.created += 1
            continue
        contact.name, contact.phone = row.name, row.phone or contact.phone
        contact.language = row.language or contact.language
        contact.attributes = {**(contact.attributes or {}), **row.attributes}
        session.add(contact)
        report.updated += 1
    session.flush()
    return report
