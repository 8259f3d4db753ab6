"""reading: report templates, reports and their signed versions

Revision ID: 0024_reading_reports
Revises: 0025_reading_outbound
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0024_reading_reports"
down_revision = "0025_reading_outbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_report_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_report_templates_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_report_templates")),
        sa.UniqueConstraint(
            "site_id",
            "modality",
            "procedure_code",
            name=op.f("uq_reading_report_templates_site_id"),
        ),
    )
    op.create_table(
        "reading_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_reading_reports_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["reading_orders.id"],
            name=op.f("fk_reading_reports_order_id_reading_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_reports")),
        sa.UniqueConstraint("order_id", name=op.f("uq_reading_reports_order_id")),
    )
    with op.batch_alter_table("reading_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reading_reports_status"), ["status"], unique=False)

    op.create_table(
        "reading_report_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("addendum", sa.Text(), nullable=False),
        sa.Column("signed_by_id", sa.Integer(), nullable=False),
        sa.Column("signed_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("archived_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reading_reports.id"],
            name=op.f("fk_reading_report_versions_report_id_reading_reports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["signed_by_id"],
            ["users.id"],
            name=op.f("fk_reading_report_versions_signed_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_report_versions")),
        sa.UniqueConstraint(
            "report_id", "version", name=op.f("uq_reading_report_versions_report_id")
        ),
    )
    with op.batch_alter_table("reading_report_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_report_versions_report_id"), ["report_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reading_report_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_report_versions_report_id"))

    op.drop_table("reading_report_versions")
    with op.batch_alter_table("reading_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_reports_status"))

    op.drop_table("reading_reports")
    op.drop_table("reading_report_templates")
