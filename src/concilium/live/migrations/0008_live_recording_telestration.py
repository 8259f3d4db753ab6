"""live: the telestration strokes kept with each recording, placed on its timeline

Revision ID: 0008_live_recording_telestration
Revises: 0007_imaging_ae_tls
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_live_recording_telestration"
down_revision = "0007_imaging_ae_tls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Recordings published before kept no strokes: they have none to show.
    with op.batch_alter_table("live_recordings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("telestration", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("live_recordings", schema=None) as batch_op:
        batch_op.drop_column("telestration")
