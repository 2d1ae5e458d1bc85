"""conversations: replies to the customer, inbound messages, flagged addresses (issue 14)

``comment.kind`` tells an internal note (every existing comment) from a reply sent to the
customer and a message received from them; an outbox row names the reply it carries
(``comment_id``) and the thread it answers (``thread_refs``). ``inbound_message`` records each
received email or SMS once, by its Message-ID or MessageSid. ``address_flag`` holds bounced
emails and numbers that opted out of SMS. ``ticket.first_response_at`` is the first reply;
``ticket.follows_id`` links a ticket opened by a customer writing again after the old one
closed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 02:46:56.203733
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "address_flag",
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "address", "kind", name=op.f("pk_address_flag")),
    )
    op.create_table(
        "inbound_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=512), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
        sa.Column("may_answer", sa.Boolean(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("raw_truncated", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comment.id"], name=op.f("fk_inbound_message_comment_id_comment")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_inbound_message_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_message")),
        sa.UniqueConstraint("message_id", name=op.f("uq_inbound_message_message_id")),
    )
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_message_ticket_id"), ["ticket_id"], unique=False
        )

    op.add_column(
        "comment", sa.Column("kind", sa.String(length=16), nullable=False, server_default="note")
    )
    op.add_column("comment", sa.Column("channel", sa.String(length=8), nullable=True))
    op.add_column("comment", sa.Column("sender", sa.String(length=320), nullable=True))

    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("comment_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("thread_refs", sa.String(), nullable=True))
        batch.create_index(batch.f("ix_outbox_comment_id"), ["comment_id"], unique=False)
        batch.create_index("ix_outbox_to_created", ["to_addr", "created_at"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_outbox_comment_id_comment"), "comment", ["comment_id"], ["id"]
        )

    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("first_response_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("follows_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_ticket_follows_id_ticket"), "ticket", ["follows_id"], ["id"]
        )
    if op.get_bind().dialect.name == "sqlite":
        # The copy SQLite's batch makes of the table drops its triggers: the pull's log
        # trigger (migration 0006) is made again, as it was.
        op.execute(_pull_trigger().SQLITE_TRIGGER)


def _pull_trigger() -> ModuleType:
    path = Path(__file__).with_name("0006_pull_trigger.py")
    spec = importlib.util.spec_from_file_location("cxdesk_migration_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ticket_follows_id_ticket"), type_="foreignkey")
        batch_op.drop_column("follows_id")
        batch_op.drop_column("first_response_at")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_pull_trigger().SQLITE_TRIGGER)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_outbox_comment_id_comment"), type_="foreignkey")
        batch_op.drop_index("ix_outbox_to_created")
        batch_op.drop_index(batch_op.f("ix_outbox_comment_id"))
        batch_op.drop_column("thread_refs")
        batch_op.drop_column("comment_id")

    with op.batch_alter_table("comment", schema=None) as batch_op:
        batch_op.drop_column("sender")
        batch_op.drop_column("channel")
        batch_op.drop_column("kind")

    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_message_ticket_id"))

    op.drop_table("inbound_message")
    op.drop_table("address_flag")
