"""reading: Modality Performed Procedure Steps

Revision ID: 0020_reading_performed_steps
Revises: 0019_reading_orders
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0020_reading_performed_steps"
down_revision = "0019_reading_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_performed_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step_id", sa.String(length=16), nullable=False),
        sa.Column("station_ae_title", sa.String(length=16), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_performed_steps_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_performed_steps")),
        sa.UniqueConstraint(
            "site_id", "sop_instance_uid", name=op.f("uq_reading_performed_steps_site_id")
        ),
    )
    with op.batch_alter_table("reading_performed_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_performed_steps_site_id"), ["site_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_performed_steps_status"), ["status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reading_performed_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_performed_steps_status"))
        batch_op.drop_index(batch_op.f("ix_reading_performed_steps_site_id"))
    op.drop_table("reading_performed_steps")
