"""reading: critical and actionable findings flagged in reports, and their communication

Revision ID: 0031_reading_critical_findings
Revises: 0027_boards_calendar
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0031_reading_critical_findings"
down_revision = "0027_boards_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("reading_reports", "reading_report_versions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("finding_level", sa.String(length=16), server_default="", nullable=False)
            )
            batch_op.add_column(
                sa.Column("finding_text", sa.String(length=200), server_default="", nullable=False)
            )
    op.create_table(
        "reading_critical_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("notified_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("due_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "acknowledged_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("escalated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalated_to", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["users.id"],
            name=op.f("fk_reading_critical_notices_recipient_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reading_reports.id"],
            name=op.f("fk_reading_critical_notices_report_id_reading_reports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["reading_report_versions.id"],
            name=op.f("fk_reading_critical_notices_version_id_reading_report_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_critical_notices")),
        sa.UniqueConstraint(
            "version_id", "recipient_id", name=op.f("uq_reading_critical_notices_version_id")
        ),
    )
    with op.batch_alter_table("reading_critical_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_critical_notices_due_at"), ["due_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_critical_notices_report_id"), ["report_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_critical_notices_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reading_critical_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_critical_notices_version_id"))
        batch_op.drop_index(batch_op.f("ix_reading_critical_notices_report_id"))
        batch_op.drop_index(batch_op.f("ix_reading_critical_notices_due_at"))

    op.drop_table("reading_critical_notices")
    for table in ("reading_report_versions", "reading_reports"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("finding_text")
            batch_op.drop_column("finding_level")
