"""boards: attendance, discussions and decisions of the meetings, the GP of a case

Revision ID: 0023_boards_decisions
Revises: 0022_reading_worklist
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0023_boards_decisions"
down_revision = "0022_reading_worklist"
branch_labels = None
depends_on = None

_TIME = concilium.platform.db.UTCDateTime(timezone=True)


def _fk(table: str, column: str, target: str, cascade: bool = False) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE" if cascade else None,
    )


def upgrade() -> None:
    op.add_column(
        "board_cases",
        sa.Column("gp_email", sa.String(length=200), server_default="", nullable=False),
    )
    op.create_table(
        "board_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", _TIME, nullable=False),
        sa.Column("left_at", _TIME, nullable=True),
        sa.Column("validated_by_id", sa.Integer(), nullable=True),
        sa.Column("validated_at", _TIME, nullable=True),
        _fk("board_attendance", "meeting_id", "board_meetings", cascade=True),
        _fk("board_attendance", "user_id", "users"),
        _fk("board_attendance", "validated_by_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_attendance")),
    )
    for column in ("meeting_id", "user_id"):
        op.create_index(
            op.f(f"ix_board_attendance_{column}"), "board_attendance", [column], unique=False
        )
    op.create_table(
        "board_discussions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=False),
        _fk("board_discussions", "meeting_id", "board_meetings", cascade=True),
        _fk("board_discussions", "case_id", "board_cases", cascade=True),
        _fk("board_discussions", "started_by_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_discussions")),
    )
    for column in ("meeting_id", "case_id"):
        op.create_index(
            op.f(f"ix_board_discussions_{column}"), "board_discussions", [column], unique=False
        )
    op.create_table(
        "board_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("proposal", sa.Text(), nullable=False),
        sa.Column("guideline", sa.Text(), nullable=False),
        sa.Column("outside_guidelines", sa.Boolean(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("trial", sa.Text(), nullable=False),
        sa.Column("further_exams", sa.Text(), nullable=False),
        sa.Column("represent", sa.Boolean(), nullable=False),
        sa.Column("referent_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("discussion_started_at", _TIME, nullable=False),
        sa.Column("signed_by_id", sa.Integer(), nullable=False),
        sa.Column("signed_at", _TIME, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("fiche_pdf", sa.LargeBinary(), nullable=True),
        _fk("board_decisions", "case_id", "board_cases", cascade=True),
        _fk("board_decisions", "meeting_id", "board_meetings"),
        _fk("board_decisions", "referent_id", "users"),
        _fk("board_decisions", "signed_by_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_decisions")),
        sa.UniqueConstraint("case_id", "version", name=op.f("uq_board_decisions_case_id")),
    )
    op.create_index(
        op.f("ix_board_decisions_case_id"), "board_decisions", ["case_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("board_decisions")
    op.drop_table("board_discussions")
    op.drop_table("board_attendance")
    with op.batch_alter_table("board_cases") as batch:
        batch.drop_column("gp_email")
