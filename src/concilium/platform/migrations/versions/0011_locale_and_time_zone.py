"""platform: each site's time zone and holiday region, each person's language and zone

Revision ID: 0011_locale_and_time_zone
Revises: 0010_live_program_switches
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_locale_and_time_zone"
down_revision = "0010_live_program_switches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "timezone", sa.String(length=64), nullable=False, server_default="Europe/Paris"
            )
        )
        batch_op.add_column(
            sa.Column("holiday_region", sa.String(length=32), nullable=False, server_default="FR")
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("timezone")
        batch_op.drop_column("locale")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("holiday_region")
        batch_op.drop_column("timezone")
