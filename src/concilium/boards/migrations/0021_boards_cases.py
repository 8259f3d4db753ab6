"""boards: cases, their documents, studies and history of states

Revision ID: 0021_boards_cases
Revises: 0020_reading_performed_steps
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0021_boards_cases"
down_revision = "0020_reading_performed_steps"
branch_labels = None
depends_on = None

_TIME = concilium.platform.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "boards",
        sa.Column(
            "records_without_discussion", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )
    op.create_table(
        "board_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("board_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("referrer_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("diagnosis", sa.Text(), nullable=False),
        sa.Column("histology", sa.Text(), nullable=False),
        sa.Column("stage", sa.String(length=200), nullable=False),
        sa.Column("performance_status", sa.Integer(), nullable=True),
        sa.Column("history", sa.Text(), nullable=False),
        sa.Column("current_treatment", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("agenda_order", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("specialties_needed", sa.JSON(), nullable=False),
        sa.Column("within_guidelines", sa.Boolean(), nullable=False),
        sa.Column("postponements", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("submitted_at", _TIME, nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["boards.id"],
            name=op.f("fk_board_cases_board_id_boards"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["board_meetings.id"],
            name=op.f("fk_board_cases_meeting_id_board_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_board_cases_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["users.id"], name=op.f("fk_board_cases_referrer_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_cases")),
    )
    for column in ("board_id", "patient_id", "referrer_id", "status", "meeting_id"):
        op.create_index(op.f(f"ix_board_cases_{column}"), "board_cases", [column], unique=False)
    op.create_table(
        "board_case_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=False),
        sa.Column("added_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["board_cases.id"],
            name=op.f("fk_board_case_documents_case_id_board_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["added_by_id"], ["users.id"], name=op.f("fk_board_case_documents_added_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_case_documents")),
    )
    op.create_index(
        op.f("ix_board_case_documents_case_id"), "board_case_documents", ["case_id"], unique=False
    )
    op.create_table(
        "board_case_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("study_date", sa.String(length=8), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("modalities", sa.String(length=64), nullable=False),
        sa.Column("added_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["board_cases.id"],
            name=op.f("fk_board_case_studies_case_id_board_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_case_studies")),
        sa.UniqueConstraint(
            "case_id", "study_instance_uid", name=op.f("uq_board_case_studies_case_id")
        ),
    )
    op.create_index(
        op.f("ix_board_case_studies_case_id"), "board_case_studies", ["case_id"], unique=False
    )
    op.create_table(
        "board_case_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["board_cases.id"],
            name=op.f("fk_board_case_transitions_case_id_board_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_board_case_transitions_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["board_meetings.id"],
            name=op.f("fk_board_case_transitions_meeting_id_board_meetings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_case_transitions")),
    )
    op.create_index(
        op.f("ix_board_case_transitions_case_id"),
        "board_case_transitions",
        ["case_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("board_case_transitions")
    op.drop_table("board_case_studies")
    op.drop_table("board_case_documents")
    op.drop_table("board_cases")
    with op.batch_alter_table("boards") as batch:
        batch.drop_column("records_without_discussion")
