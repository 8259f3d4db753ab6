"""imaging: the writers of the store, with their leases, and their pending writes

Revision ID: 0029_imaging_writers
Revises: 0024_reading_reports

Start-up recovery no longer walks the store under a local lock: each process writing to the
store registers here with a lease, and records each file before it enters or leaves the
store; only the pending writes of writers whose lease has expired are resolved.
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0029_imaging_writers"
down_revision = "0024_reading_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imaging_writers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "lease_expires_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_writers")),
    )
    op.create_index(
        op.f("ix_imaging_writers_lease_expires_at"), "imaging_writers", ["lease_expires_at"]
    )
    op.create_table(
        "imaging_pending_writes",
        sa.Column("writer_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["writer_id"],
            ["imaging_writers.id"],
            name=op.f("fk_imaging_pending_writes_writer_id_imaging_writers"),
        ),
        sa.PrimaryKeyConstraint("writer_id", "seq", name=op.f("pk_imaging_pending_writes")),
    )
    op.create_index(
        op.f("ix_imaging_pending_writes_address"), "imaging_pending_writes", ["address"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_imaging_pending_writes_address"), table_name="imaging_pending_writes")
    op.drop_table("imaging_pending_writes")
    op.drop_index(op.f("ix_imaging_writers_lease_expires_at"), table_name="imaging_writers")
    op.drop_table("imaging_writers")
