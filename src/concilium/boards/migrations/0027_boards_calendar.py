"""boards: the revision of a meeting's calendar event, the members' calendar feed tokens, and
an index of a board's cases by status

Revision ID: 0027_boards_calendar
Revises: 0029_imaging_writers
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0027_boards_calendar"
down_revision = "0029_imaging_writers"
branch_labels = None
depends_on = None

_TIME = concilium.platform.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "board_meetings",
        sa.Column("sequence", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_table(
        "board_calendar_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_board_calendar_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_calendar_tokens")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_board_calendar_tokens_secret_hash")),
    )
    op.create_index(
        op.f("ix_board_calendar_tokens_user_id"), "board_calendar_tokens", ["user_id"], unique=False
    )

    op.create_index(
        "ix_board_cases_board_id_status", "board_cases", ["board_id", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_board_cases_board_id_status", table_name="board_cases")
    op.drop_table("board_calendar_tokens")
    with op.batch_alter_table("board_meetings") as batch:
        batch.drop_column("sequence")
