"""boards: the synchronised image view of each meeting

Revision ID: 0028_boards_room
Revises: 0031_reading_critical_findings
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0028_boards_room"
down_revision = "0031_reading_critical_findings"
branch_labels = None
depends_on = None

_TIME = concilium.platform.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "board_meeting_views",
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("presenter_id", sa.Integer(), nullable=True),
        sa.Column("view", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["board_meetings.id"],
            name=op.f("fk_board_meeting_views_meeting_id_board_meetings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["presenter_id"],
            ["users.id"],
            name=op.f("fk_board_meeting_views_presenter_id_users"),
        ),
        sa.PrimaryKeyConstraint("meeting_id", name=op.f("pk_board_meeting_views")),
    )


def downgrade() -> None:
    op.drop_table("board_meeting_views")
