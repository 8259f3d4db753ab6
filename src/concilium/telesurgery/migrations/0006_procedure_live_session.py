"""telesurgery: the live session carrying a procedure's video

Revision ID: 0006_procedure_live_session
Revises: 0005_live_recordings
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_procedure_live_session"
down_revision = "0005_live_recordings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("telesurgery_procedures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("live_session_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("telesurgery_procedures", schema=None) as batch_op:
        batch_op.drop_column("live_session_id")
