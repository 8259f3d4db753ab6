"""live: recordings of sessions for the library

Revision ID: 0005_live_recordings
Revises: 0004_telesurgery
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0005_live_recordings"
down_revision = "0004_telesurgery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("feed", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("video_codec", sa.String(length=16), nullable=False),
        sa.Column("started_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("chapters", sa.JSON(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_recordings_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_recordings")),
    )
    op.create_index(
        op.f("ix_live_recordings_session_id"), "live_recordings", ["session_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_live_recordings_session_id"), table_name="live_recordings")
    op.drop_table("live_recordings")
