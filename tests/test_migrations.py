"""Alembic migrations (cxdesk.store.migrate) on SQLite and PostgreSQL.

These tests need databases that were never migrated: ``empty_db_url`` is a new SQLite file in
tmp_path, or a database created with a unique name on the test PostgreSQL server
(``pg_admin_url`` from conftest.py) and dropped afterwards. The conftest's own fixtures
(``engine``, ``sqlite_url``, ``pg_url``) hand out databases already migrated to head.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from cxdesk.errors import DeskError
from cxdesk.i18n import PSEUDO, use_language
from cxdesk.store import migrate
from cxdesk.store.db import make_engine
from tests.pseudo import untranslated
from tests.threads import at_once

VERSIONS = migrate.SCRIPT_LOCATION / "versions"


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a database that was never migrated; the test runs once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'never-migrated.db'}"
    else:
        with fresh_pg_database(request.getfixturevalue("pg_admin_url")) as url:
            yield url


@pytest.fixture
def empty_engine(empty_db_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def scripts_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the migration scripts that ``migrate`` uses; tests add revisions."""
    copy = tmp_path / "migrations"
    shutil.copytree(
        migrate.SCRIPT_LOCATION, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    monkeypatch.setattr(migrate, "SCRIPT_LOCATION", copy)
    return copy


@contextmanager
def fresh_pg_database(admin_url: str) -> Iterator[str]:
    """CREATE DATABASE with a unique name on the server; yield its URL; DROP it afterwards."""
    name = f"cxdesk_mig_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


# -- helpers ---------------------------------------------------------------------------------


def first_revision() -> str:
    (base,) = ScriptDirectory.from_config(migrate.alembic_config()).get_bases()
    return base


def schema_snapshot(engine: Engine) -> dict[str, Any]:
    """Everything the inspector sees, in a comparable form."""
    inspector = sa.inspect(engine)
    snapshot: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        snapshot[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "uniques": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
        }
    return snapshot


def utc_naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


STAMP = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)

# Rows written with the columns that exist at the first revision (raw SQL: the models describe
# the newest schema, which later revisions may change).
SEED_ROWS: dict[str, dict[str, Any]] = {
    "team": {"name": "Front desk", "created_at": STAMP},
    "user": {
        "username": "ada",
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "phone": "+15551234567",
        "role": "expert",
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "active": True,
        "created_at": STAMP,
    },
    "status": {"name": "new", "category": "open", "builtin": True, "position": 0},
    "ticket": {
        "key": "EXP-1",
        "title": "Laptop will not boot",
        "status": "new",
        "priority": "high",
        "customer_name": "Grace Hopper",
        "customer_email": "grace@example.org",
        "customer_phone": "",
        "customer_comment": "It beeps three times. Ünïcödé survives too.",
        "source": "checkin",
        "channel": "in_person",
        "created_at": STAMP,
        "updated_at": STAMP,
        "estimated_resolution": date(2026, 3, 6),
    },
}
SEED_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "created_at": sa.DateTime(timezone=True),
    "updated_at": sa.DateTime(timezone=True),
    "estimated_resolution": sa.Date(),
    "active": sa.Boolean(),
    "builtin": sa.Boolean(),
}


def insert_seed_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in ("team", "user", "status"):
            _insert(connection, table, SEED_ROWS[table])
        team_id = connection.execute(sa.text("SELECT id FROM team")).scalar_one()
        user_id = connection.execute(sa.text('SELECT id FROM "user"')).scalar_one()
        ids = {"origin_team_id": team_id, "team_id": team_id, "owner_id": user_id}
        _insert(connection, "ticket", SEED_ROWS["ticket"] | ids)


def _insert(connection: sa.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(f'"{name}"' for name in row)
    values = ", ".join(f":{name}" for name in row)
    statement = sa.text(f'INSERT INTO "{table}" ({columns}) VALUES ({values})').bindparams(
        *(sa.bindparam(name, type_=SEED_TYPES[name]) for name in row if name in SEED_TYPES)
    )
    connection.execute(statement, row)


def read_row(engine: Engine, table: str, columns: list[str]) -> dict[str, Any]:
    select = ", ".join(f'"{name}"' for name in columns)
    # Typed by name (positional columns would be matched by position).
    statement = sa.text(f'SELECT {select} FROM "{table}"').columns(
        **{name: SEED_TYPES[name] for name in columns if name in SEED_TYPES}
    )
    with engine.connect() as connection:
        (row,) = connection.execute(statement).mappings().all()
    return {
        name: utc_naive(value) if isinstance(value, datetime) else value
        for name, value in row.items()
    }


def assert_seed_rows_intact(engine: Engine) -> None:
    for table, row in SEED_ROWS.items():
        expected = {k: utc_naive(v) if isinstance(v, datetime) else v for k, v in row.items()}
        assert read_row(engine, table, list(row)) == expected, table
    ticket = read_row(engine, "ticket", ["team_id", "origin_team_id", "owner_id"])
    team = read_row(engine, "team", ["id"])
    user = read_row(engine, "user", ["id"])
    assert ticket == {"team_id": team["id"], "origin_team_id": team["id"], "owner_id": user["id"]}


def add_revision(scripts: Path, revision: str, down: str, body: str) -> None:
    (scripts / "versions" / f"{revision}_test.py").write_text(
        f'''"""test revision"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
''',
        encoding="utf-8",
    )


# -- the packaged revisions ------------------------------------------------------------------


def test_revisions_form_one_numbered_chain() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    chain = list(reversed(list(script.walk_revisions())))
    assert [r.revision for r in chain] == [f"{n:04d}" for n in range(1, len(chain) + 1)]
    assert chain[-1].revision == migrate.head_revision()
    for previous, current in zip([None, *chain], chain, strict=False):
        assert current.down_revision == (previous.revision if previous else None)
        assert Path(current.path).name.startswith(f"{current.revision}_")
    files = {p.name for p in VERSIONS.glob("*.py")}
    assert files == {Path(r.path).name for r in chain}, "a file in versions/ is not a revision"


def test_upgrade_creates_every_table_without_drift(empty_engine: Engine) -> None:
    assert migrate.current_revision(empty_engine) is None

    migrate.upgrade(empty_engine)

    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    tables = set(sa.inspect(empty_engine).get_table_names())
    assert tables == set(SQLModel.metadata.tables) | {"alembic_version"}
    assert migrate.schema_drift(empty_engine) == []


def test_upgrade_twice_changes_nothing(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    insert_seed_rows(empty_engine)
    before = schema_snapshot(empty_engine)

    migrate.upgrade(empty_engine)

    assert schema_snapshot(empty_engine) == before
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    with empty_engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(migrate.head_revision(),)]
    assert_seed_rows_intact(empty_engine)
    assert migrate.schema_drift(empty_engine) == []


def test_rows_written_at_first_revision_survive_upgrade_to_head(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, first_revision())
    assert migrate.current_revision(empty_engine) == first_revision()
    insert_seed_rows(empty_engine)

    migrate.upgrade(empty_engine)

    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    assert_seed_rows_intact(empty_engine)
    assert migrate.schema_drift(empty_engine) == []


def test_downgrade_below_the_desk_revision_and_back(empty_engine: Engine) -> None:
    """Migration 0024 (and what follows it) goes down and up again: its table, triggers and
    (PostgreSQL) function gone, then made again without drift."""
    from alembic import command

    migrate.upgrade(empty_engine)
    with migrate.migration_connection(empty_engine) as connection:
        command.downgrade(migrate.alembic_config(connection), "0023")
    assert "desk_revision" not in sa.inspect(empty_engine).get_table_names()
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    assert migrate.schema_drift(empty_engine) == []
    with empty_engine.begin() as connection:
        before = connection.execute(sa.text("SELECT revision FROM desk_revision")).scalar_one()
        connection.execute(sa.text("INSERT INTO desk_setting (name, value) VALUES ('again', 'x')"))
        after = connection.execute(sa.text("SELECT revision FROM desk_revision")).scalar_one()
    assert after == before + 1


def test_database_from_newer_code_is_refused_in_one_line(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    with empty_engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(DeskError, match="9999") as info:
        migrate.upgrade(empty_engine)

    assert "\n" not in str(info.value)
    assert "newer" in str(info.value)
    assert migrate.current_revision(empty_engine) == "9999"


def test_a_database_at_two_revisions_is_refused_in_the_users_language(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine)
    with empty_engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('9999')"))
    use_language(PSEUDO)
    with pytest.raises(DeskError, match="9999") as info:
        migrate.current_revision(empty_engine)
    assert untranslated(str(info.value)) == []


def test_unknown_target_revision_is_a_desk_error(empty_engine: Engine) -> None:
    with pytest.raises(DeskError, match="nope"):
        migrate.upgrade(empty_engine, "nope")
    assert migrate.current_revision(empty_engine) is None


def test_concurrent_upgrades_take_turns(empty_db_url: str) -> None:
    """Two processes starting on an empty database at once: both succeed, one migrates."""
    engines = [make_engine(empty_db_url) for _ in range(2)]
    try:
        assert at_once(migrate.upgrade, engines) == []
        assert migrate.current_revision(engines[0]) == migrate.head_revision()
        assert migrate.schema_drift(engines[0]) == []
    finally:
        for engine in engines:
            engine.dispose()


def test_migrating_leaves_logging_alone(empty_engine: Engine) -> None:
    logger = logging.getLogger("cxdesk.test_migrations")
    root_handlers = list(logging.getLogger().handlers)
    root_level = logging.getLogger().level

    migrate.upgrade(empty_engine)

    assert not logger.disabled
    assert logging.getLogger().handlers == root_handlers
    assert logging.getLogger().level == root_level


CONSTRAINT_KINDS: dict[type[sa.Constraint], str] = {
    sa.PrimaryKeyConstraint: "pk",
    sa.ForeignKeyConstraint: "fk",
    sa.UniqueConstraint: "uq",
}


def live_constraint_names(engine: Engine) -> dict[str, set[tuple[str, str | None]]]:
    """Per table: (kind, name) of its primary key, foreign keys and unique constraints."""
    inspector = sa.inspect(engine)
    names: dict[str, set[tuple[str, str | None]]] = {}
    for table in inspector.get_table_names():
        if table != "alembic_version":
            names[table] = (
                {("pk", inspector.get_pk_constraint(table)["name"])}
                | {("fk", fk["name"]) for fk in inspector.get_foreign_keys(table)}
                | {("uq", uq["name"]) for uq in inspector.get_unique_constraints(table)}
            )
    return names


def test_constraints_have_the_models_names(empty_engine: Engine) -> None:
    """Constraint names follow the models' naming convention, the same on both backends.

    ``schema_drift`` does not compare primary or foreign key names, so this does.
    """
    migrate.upgrade(empty_engine)

    expected = {
        table.name: {
            (CONSTRAINT_KINDS[type(constraint)], constraint.name)
            for constraint in table.constraints
        }
        for table in SQLModel.metadata.tables.values()
    }
    assert live_constraint_names(empty_engine) == expected
    for table, names in expected.items():
        for kind, name in names:
            assert isinstance(name, str) and name.startswith(f"{kind}_{table}"), (table, name)


@pytest.mark.filterwarnings("error")
def test_models_sort_without_a_cycle() -> None:
    """``survey_response.ticket_id`` is ``use_alter``: create_all/drop_all sort cleanly."""
    tables = [table.name for table in SQLModel.metadata.sorted_tables]
    assert tables.index("survey_response") < tables.index("ticket")


# -- later revisions, simulated with a private copy of the scripts --------------------------


def test_table_rebuild_in_a_later_revision_keeps_rows(
    empty_engine: Engine, scripts_copy: Path
) -> None:
    """A batch migration rebuilding ``team`` (referenced by tickets) keeps every row.

    On SQLite the rebuild is copy, drop, rename: with foreign keys enforced, the drop would
    fail; ``upgrade`` turns them off for the migration and on again afterwards.
    """
    head = migrate.head_revision()
    migrate.upgrade(empty_engine)
    insert_seed_rows(empty_engine)
    add_revision(
        scripts_copy,
        "9001",
        head,
        '    with op.batch_alter_table("team", recreate="always" if op.get_bind().dialect.name'
        ' == "sqlite" else "auto") as batch_op:\n'
        '        batch_op.add_column(sa.Column("motto", sa.String(length=100), nullable=True))',
    )

    migrate.upgrade(empty_engine)

    assert migrate.current_revision(empty_engine) == "9001"
    assert_seed_rows_intact(empty_engine)
    assert "motto" in {c["name"] for c in sa.inspect(empty_engine).get_columns("team")}
    with pytest.raises(sa.exc.IntegrityError), empty_engine.begin() as connection:
        # Foreign keys are enforced again (on SQLite: on the pooled connection too).
        connection.execute(sa.text("UPDATE ticket SET team_id = 424242"))


def test_failing_revision_changes_nothing(empty_engine: Engine, scripts_copy: Path) -> None:
    head = migrate.head_revision()
    migrate.upgrade(empty_engine)
    insert_seed_rows(empty_engine)
    before = schema_snapshot(empty_engine)
    add_revision(
        scripts_copy,
        "9001",
        head,
        '    op.create_table("scratch", sa.Column("id", sa.Integer(), primary_key=True))\n'
        '    op.execute("DELETE FROM ticket")\n'
        '    raise RuntimeError("revision 9001 is broken")',
    )

    with pytest.raises(RuntimeError, match="9001 is broken"):
        migrate.upgrade(empty_engine)

    assert migrate.current_revision(empty_engine) == head
    assert schema_snapshot(empty_engine) == before
    assert_seed_rows_intact(empty_engine)


def test_revision_breaking_foreign_keys_is_rolled_back_on_sqlite(
    tmp_path: Path, scripts_copy: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    head = migrate.head_revision()
    migrate.upgrade(engine)
    insert_seed_rows(engine)
    add_revision(scripts_copy, "9001", head, '    op.execute("DELETE FROM team")')

    with pytest.raises(DeskError, match=re.escape("broken foreign key")):
        migrate.upgrade(engine)

    assert migrate.current_revision(engine) == head
    assert_seed_rows_intact(engine)
    engine.dispose()


# -- the conftest's databases ----------------------------------------------------------------


def test_test_databases_are_at_head_without_drift(engine: Engine) -> None:
    """The ``engine`` every other test gets (conftest.py) is migrated the application's way."""
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.schema_drift(engine) == []
