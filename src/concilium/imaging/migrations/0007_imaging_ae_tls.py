"""imaging: TLS towards a registered DICOM node

Revision ID: 0007_imaging_ae_tls
Revises: 0006_procedure_live_session
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_imaging_ae_tls"
down_revision = "0006_procedure_live_session"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nodes registered before keep being called over plain TCP, as they were.
    with op.batch_alter_table("imaging_remote_aes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tls", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("imaging_remote_aes", schema=None) as batch_op:
        batch_op.drop_column("tls")
