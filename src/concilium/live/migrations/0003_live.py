"""live: sessions, participants, sources, cameras, chat and questions, telestration

Revision ID: 0003_live
Revises: 0002_imaging
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0003_live"
down_revision = "0002_imaging"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("record", sa.Boolean(), nullable=False),
        sa.Column("janus_room_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_live_sessions_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_live_sessions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_live_sessions_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_sessions")),
        sa.UniqueConstraint("janus_room_id", name=op.f("uq_live_sessions_janus_room_id")),
    )
    op.create_index(
        op.f("ix_live_sessions_patient_id"), "live_sessions", ["patient_id"], unique=False
    )
    op.create_index(
        op.f("ix_live_sessions_scheduled_at"), "live_sessions", ["scheduled_at"], unique=False
    )
    op.create_index(op.f("ix_live_sessions_site_id"), "live_sessions", ["site_id"], unique=False)
    op.create_table(
        "live_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["live_messages.id"],
            name=op.f("fk_live_messages_merged_into_id_live_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_messages_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_live_messages_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_messages")),
    )
    op.create_index(
        op.f("ix_live_messages_session_id"), "live_messages", ["session_id"], unique=False
    )
    op.create_table(
        "live_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("share_id", sa.Integer(), nullable=True),
        sa.Column("invited_by_id", sa.Integer(), nullable=False),
        sa.Column("invited_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("joined_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("left_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invited_by_id"], ["users.id"], name=op.f("fk_live_participants_invited_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_participants_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["share_id"], ["shares.id"], name=op.f("fk_live_participants_share_id_shares")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_live_participants_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_participants")),
        sa.UniqueConstraint("session_id", "user_id", name=op.f("uq_live_participants_session_id")),
    )
    op.create_index(
        op.f("ix_live_participants_session_id"), "live_participants", ["session_id"], unique=False
    )
    op.create_index(
        op.f("ix_live_participants_user_id"), "live_participants", ["user_id"], unique=False
    )
    op.create_table(
        "live_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=500), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_sources_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_sources")),
    )
    op.create_index(
        op.f("ix_live_sources_session_id"), "live_sources", ["session_id"], unique=False
    )
    op.create_table(
        "live_strokes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("color", sa.String(length=7), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_strokes_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_live_strokes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_strokes")),
    )
    op.create_index(
        op.f("ix_live_strokes_session_id"), "live_strokes", ["session_id"], unique=False
    )
    op.create_table(
        "live_cameras",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("visca_address", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_cameras_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["live_sources.id"],
            name=op.f("fk_live_cameras_source_id_live_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_cameras")),
    )
    op.create_index(
        op.f("ix_live_cameras_session_id"), "live_cameras", ["session_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_live_cameras_session_id"), table_name="live_cameras")
    op.drop_table("live_cameras")
    op.drop_index(op.f("ix_live_strokes_session_id"), table_name="live_strokes")
    op.drop_table("live_strokes")
    op.drop_index(op.f("ix_live_sources_session_id"), table_name="live_sources")
    op.drop_table("live_sources")
    op.drop_index(op.f("ix_live_participants_user_id"), table_name="live_participants")
    op.drop_index(op.f("ix_live_participants_session_id"), table_name="live_participants")
    op.drop_table("live_participants")
    op.drop_index(op.f("ix_live_messages_session_id"), table_name="live_messages")
    op.drop_table("live_messages")
    op.drop_index(op.f("ix_live_sessions_site_id"), table_name="live_sessions")
    op.drop_index(op.f("ix_live_sessions_scheduled_at"), table_name="live_sessions")
    op.drop_index(op.f("ix_live_sessions_patient_id"), table_name="live_sessions")
    op.drop_table("live_sessions")
