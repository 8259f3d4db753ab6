"""reading: HL7 senders, message log, imaging orders and steps

Revision ID: 0019_reading_orders
Revises: 0018_boards
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0019_reading_orders"
down_revision = "0018_boards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_hl7_senders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("application", sa.String(length=64), nullable=False),
        sa.Column("facility", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_hl7_senders_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_hl7_senders")),
        sa.UniqueConstraint(
            "application", "facility", name=op.f("uq_reading_hl7_senders_application")
        ),
    )
    with op.batch_alter_table("reading_hl7_senders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_hl7_senders_site_id"), ["site_id"], unique=False
        )

    op.create_table(
        "reading_merged_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("merged_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_reading_merged_identifiers_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_merged_identifiers_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_merged_identifiers")),
        sa.UniqueConstraint("site_id", "value", name=op.f("uq_reading_merged_identifiers_site_id")),
    )
    with op.batch_alter_table("reading_merged_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_merged_identifiers_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "reading_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(length=64), nullable=False),
        sa.Column("accession_number", sa.String(length=16), nullable=False),
        sa.Column("requested_procedure_id", sa.String(length=16), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("procedure_coding_system", sa.String(length=64), nullable=False),
        sa.Column("procedure_description", sa.String(length=200), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=1), nullable=False),
        sa.Column("referring_physician_name", sa.String(length=200), nullable=False),
        sa.Column("referring_physician_id", sa.String(length=64), nullable=False),
        sa.Column("requesting_physician_name", sa.String(length=200), nullable=False),
        sa.Column("requesting_physician_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("order_control", sa.String(length=2), nullable=False),
        sa.Column("scheduled_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("placer_order_number", sa.String(length=64), nullable=False),
        sa.Column("placer_issuer", sa.String(length=64), nullable=False),
        sa.Column("filler_order_number", sa.String(length=64), nullable=False),
        sa.Column("filler_issuer", sa.String(length=64), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_reading_orders_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_orders_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_orders")),
        sa.UniqueConstraint("site_id", "accession_number", name=op.f("uq_reading_orders_site_id")),
    )
    with op.batch_alter_table("reading_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_orders_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reading_orders_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reading_orders_status"), ["status"], unique=False)

    op.create_table(
        "reading_station_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("station_ae_title", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_station_rules_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_station_rules")),
        sa.UniqueConstraint(
            "site_id", "modality", "procedure_code", name=op.f("uq_reading_station_rules_site_id")
        ),
    )
    with op.batch_alter_table("reading_station_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_station_rules_site_id"), ["site_id"], unique=False
        )

    op.create_table(
        "reading_hl7_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("sender_id", sa.Integer(), nullable=True),
        sa.Column("sending_application", sa.String(length=64), nullable=False),
        sa.Column("sending_facility", sa.String(length=64), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=24), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("idempotency_key", sa.String(length=199), nullable=True),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("answers_id", sa.Integer(), nullable=True),
        sa.Column("repeat_of_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["answers_id"],
            ["reading_hl7_messages.id"],
            name=op.f("fk_reading_hl7_messages_answers_id_reading_hl7_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_reading_hl7_messages_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["repeat_of_id"],
            ["reading_hl7_messages.id"],
            name=op.f("fk_reading_hl7_messages_repeat_of_id_reading_hl7_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["reading_hl7_senders.id"],
            name=op.f("fk_reading_hl7_messages_sender_id_reading_hl7_senders"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_hl7_messages_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_hl7_messages")),
        sa.UniqueConstraint(
            "sender_id", "idempotency_key", name=op.f("uq_reading_hl7_messages_sender_id")
        ),
    )
    with op.batch_alter_table("reading_hl7_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_hl7_messages_answers_id"), ["answers_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_hl7_messages_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_hl7_messages_sender_id"), ["sender_id"], unique=False
        )
        batch_op.create_index("ix_reading_hl7_messages_site_at", ["site_id", "at"], unique=False)

    op.create_table(
        "reading_scheduled_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("requested_procedure_id", sa.String(length=16), nullable=False),
        sa.Column("step_id", sa.String(length=16), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("station_ae_title", sa.String(length=16), nullable=False),
        sa.Column("station_name", sa.String(length=16), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("start_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("description", sa.String(length=64), nullable=False),
        sa.Column("protocol_code", sa.String(length=64), nullable=False),
        sa.Column("protocol_coding_system", sa.String(length=64), nullable=False),
        sa.Column("performing_physician_name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["reading_orders.id"],
            name=op.f("fk_reading_scheduled_steps_order_id_reading_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_scheduled_steps")),
        sa.UniqueConstraint(
            "order_id",
            "requested_procedure_id",
            "step_id",
            name=op.f("uq_reading_scheduled_steps_order_id"),
        ),
    )
    with op.batch_alter_table("reading_scheduled_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_scheduled_steps_modality"), ["modality"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_scheduled_steps_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            "ix_reading_scheduled_steps_station", ["station_ae_title", "start_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_scheduled_steps_status"), ["status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reading_scheduled_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_scheduled_steps_status"))
        batch_op.drop_index("ix_reading_scheduled_steps_station")
        batch_op.drop_index(batch_op.f("ix_reading_scheduled_steps_order_id"))
        batch_op.drop_index(batch_op.f("ix_reading_scheduled_steps_modality"))

    op.drop_table("reading_scheduled_steps")
    with op.batch_alter_table("reading_hl7_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_reading_hl7_messages_site_at")
        batch_op.drop_index(batch_op.f("ix_reading_hl7_messages_sender_id"))
        batch_op.drop_index(batch_op.f("ix_reading_hl7_messages_patient_id"))
        batch_op.drop_index(batch_op.f("ix_reading_hl7_messages_answers_id"))

    op.drop_table("reading_hl7_messages")
    with op.batch_alter_table("reading_station_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_station_rules_site_id"))

    op.drop_table("reading_station_rules")
    with op.batch_alter_table("reading_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_orders_status"))
        batch_op.drop_index(batch_op.f("ix_reading_orders_site_id"))
        batch_op.drop_index(batch_op.f("ix_reading_orders_patient_id"))

    op.drop_table("reading_orders")
    with op.batch_alter_table("reading_merged_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_merged_identifiers_patient_id"))

    op.drop_table("reading_merged_identifiers")
    with op.batch_alter_table("reading_hl7_senders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_hl7_senders_site_id"))

    op.drop_table("reading_hl7_senders")
