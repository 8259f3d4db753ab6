"""live: sources remember who added them and keep camera credentials sealed

Revision ID: 0016_live_source_endpoints
Revises: 0015_imaging_ae_identity

A cine loop is authorised as the person who added it (``added_by_id``); an IP camera's URL
with credentials is kept sealed (``sealed_url``) and shown masked (``reference``). URLs
written in clear before this revision are sealed when the live service opens
(``concilium.live.process.LiveProcess.open``), which holds the installation's key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_live_source_endpoints"
down_revision = "0015_imaging_ae_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("live_sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("added_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_live_sources_added_by_id_users"), "users", ["added_by_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("live_sources", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_live_sources_added_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("added_by_id")
        batch_op.drop_column("sealed_url")
