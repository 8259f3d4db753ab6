"""live: each recording keeps the name its feed published under, for the library

Revision ID: 0017_live_recording_source
Revises: 0016_live_source_endpoints
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_live_recording_source"
down_revision = "0016_live_source_endpoints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Recordings published before kept no name: the library shows their feed's number.
    with op.batch_alter_table("live_recordings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("live_recordings", schema=None) as batch_op:
        batch_op.drop_column("source")
