"""reading: the queue of HL7 messages to the hospital systems, and where each system
receives results and how it is told that images are available

Revision ID: 0025_reading_outbound
Revises: 0026_reading_fhir
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0025_reading_outbound"
down_revision = "0026_reading_fhir"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reading_hl7_senders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("results_host", sa.String(length=255), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("results_port", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "images_available", sa.String(length=8), nullable=False, server_default="none"
            )
        )

    op.create_table(
        "reading_outbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("message_type", sa.String(length=24), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("lease_until", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("once_key", sa.String(length=64), nullable=True),
        sa.Column("log_id", sa.Integer(), nullable=True),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["reading_hl7_senders.id"],
            name=op.f("fk_reading_outbound_messages_destination_id_reading_hl7_senders"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["log_id"],
            ["reading_hl7_messages.id"],
            name=op.f("fk_reading_outbound_messages_log_id_reading_hl7_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["reading_orders.id"],
            name=op.f("fk_reading_outbound_messages_order_id_reading_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_reading_outbound_messages_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_outbound_messages_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_outbound_messages")),
        sa.UniqueConstraint("once_key", name=op.f("uq_reading_outbound_messages_once_key")),
    )
    with op.batch_alter_table("reading_outbound_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reading_outbound_messages_due", ["state", "next_attempt_at"], unique=False
        )
        for column in ("site_id", "destination_id", "order_id", "state"):
            batch_op.create_index(
                batch_op.f(f"ix_reading_outbound_messages_{column}"), [column], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("reading_outbound_messages", schema=None) as batch_op:
        for column in ("state", "order_id", "destination_id", "site_id"):
            batch_op.drop_index(batch_op.f(f"ix_reading_outbound_messages_{column}"))
        batch_op.drop_index("ix_reading_outbound_messages_due")

    op.drop_table("reading_outbound_messages")
    with op.batch_alter_table("reading_hl7_senders", schema=None) as batch_op:
        batch_op.drop_column("images_available")
        batch_op.drop_column("results_host")
        batch_op.drop_column("results_port")
