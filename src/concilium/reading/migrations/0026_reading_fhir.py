"""reading: versions of the resources served over FHIR

Revision ID: 0026_reading_fhir
Revises: 0023_boards_decisions
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0026_reading_fhir"
down_revision = "0023_boards_decisions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_resource_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_resource_versions")),
        sa.UniqueConstraint(
            "resource_type",
            "resource_id",
            name=op.f("uq_reading_resource_versions_resource_type"),
        ),
    )


def downgrade() -> None:
    op.drop_table("reading_resource_versions")
