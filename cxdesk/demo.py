"""The ready demo desk: the Ask the Experts seed plus sample check-ins, and its logins."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, col, select

from cxdesk import locations
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.seed import apply_seed, read_seed
from cxdesk.store.db import is_sqlite, read_session
from cxdesk.store.directory import get_user
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import Team, User, utcnow
from cxdesk.store.sla_policies import add_event_days, get_calendar
from cxdesk.store.surveys import submit_response

DEMO_PASSWORD = "demo"
DEMO_CALENDAR = "Event hours"
"""The seed's SLA calendar; the demo makes its first two days event days open all day."""

SAMPLE_CHECKINS = [
    ("Zoë", "Ann O'Neil", "zoe.oneil@example.com", "1-415-555-2671", "360", None),
    ("Hiroshi", "Tanaka", "h.tanaka@example.jp", "+81 90-1234-5678", "Stats iQ", None),
    ("Amélie", "Durand", "amelie.durand@example.fr", "+33 6 12 34 56 78", "XM Directory", "fr"),
    ("Giulia", "Bianchi", "giulia.bianchi@example.it", "", "CX Dashboards", "it"),
    ("Sam", "Okafor", "sam.okafor@example.com", "1-212-555-0147", "API", None),
    ("Priya", "Raman", "priya.raman@example.com", "", "Employee Engagement", None),
    ("Lukas", "Berg", "lukas.berg@example.de", "+49 151 23456789", "Survey Projects", None),
    ("Maria", "Santos", "maria.santos@example.com", "1-305-555-0182", "360", None),
    ("Tom", "Walsh", "tom.walsh@example.com", "", "Extensions", None),
    ("Aisha", "Bello", "aisha.bello@example.com", "1-646-555-0119", "Website/App Feedback", None),
]
"""First and last name, email, phone, product, language (None: the desk's)."""
NOTES = [
    "Dashboard filters reset when I share the link. Has to leave by 3pm.",
    "Regression output differs from Excel.",
    "Contact import keeps duplicating households.",
    "",
]


def desk_exists(engine: Engine) -> bool:
    if "team" not in inspect(engine).get_table_names():
        return False
    with read_session(engine) as session:
        return session.exec(select(Team)).first() is not None


def wipe(engine: Engine) -> None:
    """Remove every table (the --reset of ``cxdesk demo``)."""
    with engine.begin() as connection:
        if is_sqlite(engine):
            connection.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
            names = [
                row[0]
                for row in connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for name in names:
                connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
        else:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))


def build_demo(engine: Engine, *, reset: bool = False) -> bool:
    """Create the demo desk; returns False when one was already there (and kept)."""
    if reset:
        wipe(engine)
    upgrade(engine)
    if desk_exists(engine):
        return False
    path = locations.demo_seed_file()
    data, seed_text = read_seed(path)
    with unit_of_work(engine) as session:
        apply_seed(session, data, seed_text, path=str(path))
        _open_the_event(session)
    for index, (first, last, email, phone, product, language) in enumerate(SAMPLE_CHECKINS):
        with unit_of_work(engine) as session:
            submit_response(
                session,
                actor=get_user(session, "vera"),
                survey_name="checkin",
                language=language,
                answers={
                    "first_name": first,
                    "last_name": last,
                    "email": email,
                    "phone": phone,
                    "product": product,
                    "username": f"{first}.{last}".lower().replace(" ", "").replace("'", ""),
                    "notes": NOTES[index % len(NOTES)],
                },
            )
    return True


def _open_the_event(session: Session) -> None:
    """Today and tomorrow (in the calendar's zone) are event days open all day: whenever the
    demo is tried, its tickets' SLA clocks run (outside the seed's weekday hours they would
    wait for Monday 08:00)."""
    zone = ZoneInfo(get_calendar(session, DEMO_CALENDAR).time_zone)
    today = utcnow().astimezone(zone).date()
    days = [today, today + timedelta(days=1)]
    add_event_days(session, DEMO_CALENDAR, days, label="Demo day (cxdesk demo)")


def demo_logins(engine: Engine) -> list[tuple[str, str, str, str]]:
    """(username, name, role, password) for each demo user."""
    with read_session(engine) as session:
        users = session.exec(select(User).order_by(col(User.role), col(User.username))).all()
        return [(u.username, u.name, u.role, DEMO_PASSWORD) for u in users]
