"""platform: the outbox of e-mail that must leave, and every change of state of its messages

Revision ID: 0012_mail_outbox
Revises: 0011_locale_and_time_zone
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0012_mail_outbox"
down_revision = "0011_locale_and_time_zone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "next_attempt_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("sent_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_mail_outbox_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_mail_outbox_message_id")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_mail_outbox_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_mail_outbox_site_id"), ["site_id"], unique=False)

    op.create_table(
        "mail_outbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=False),
        sa.Column("at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.String(length=24), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["mail_id"],
            ["mail_outbox.id"],
            name=op.f("fk_mail_outbox_events_mail_id_mail_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox_events")),
    )
    with op.batch_alter_table("mail_outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mail_outbox_events_mail_id"), ["mail_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("mail_outbox_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_outbox_events_mail_id"))

    op.drop_table("mail_outbox_events")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_outbox_site_id"))
        batch_op.drop_index("ix_mail_outbox_due")

    op.drop_table("mail_outbox")
