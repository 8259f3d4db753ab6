"""boards: boards with their schedule and quorum rules, member sites, members, meetings

Revision ID: 0018_boards
Revises: 0017_live_recording_source
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0018_boards"
down_revision = "0017_live_recording_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("board_type", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("at", sa.Time(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("interval_weeks", sa.Integer(), nullable=False),
        sa.Column("holiday_region", sa.String(length=32), nullable=True),
        sa.Column("on_holiday", sa.String(length=32), nullable=False),
        sa.Column("min_specialties", sa.Integer(), nullable=False),
        sa.Column("required_specialties", sa.JSON(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_boards_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_boards")),
        sa.UniqueConstraint("code", name=op.f("uq_boards_code")),
    )
    op.create_index(op.f("ix_boards_site_id"), "boards", ["site_id"], unique=False)
    op.create_table(
        "board_meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("board_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("scheduled_day", sa.Date(), nullable=False),
        sa.Column("starts_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("moved_for", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["boards.id"],
            name=op.f("fk_board_meetings_board_id_boards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_meetings")),
        sa.UniqueConstraint("key", name=op.f("uq_board_meetings_key")),
    )
    op.create_index(
        op.f("ix_board_meetings_board_id"), "board_meetings", ["board_id"], unique=False
    )
    op.create_index(
        op.f("ix_board_meetings_starts_at"), "board_meetings", ["starts_at"], unique=False
    )
    op.create_table(
        "board_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("board_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("specialties", sa.JSON(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("added_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["boards.id"],
            name=op.f("fk_board_members_board_id_boards"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_board_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_members")),
        sa.UniqueConstraint("board_id", "user_id", name=op.f("uq_board_members_board_id")),
    )
    op.create_index(op.f("ix_board_members_board_id"), "board_members", ["board_id"], unique=False)
    op.create_index(op.f("ix_board_members_user_id"), "board_members", ["user_id"], unique=False)
    op.create_table(
        "board_sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("board_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["boards.id"],
            name=op.f("fk_board_sites_board_id_boards"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_board_sites_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_sites")),
        sa.UniqueConstraint("board_id", "site_id", name=op.f("uq_board_sites_board_id")),
    )
    op.create_index(op.f("ix_board_sites_board_id"), "board_sites", ["board_id"], unique=False)
    op.create_index(op.f("ix_board_sites_site_id"), "board_sites", ["site_id"], unique=False)


def downgrade() -> None:
    op.drop_table("board_sites")
    op.drop_table("board_members")
    op.drop_table("board_meetings")
    op.drop_table("boards")
