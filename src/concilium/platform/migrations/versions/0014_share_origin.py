"""platform: the site a share is granted from

Revision ID: 0014_share_origin
Revises: 0013_account_security

A share of a patient grants only what the site it comes from holds of the patient. Shares
made before knew no such site: each takes the lowest site where its granter held a role
sharing patients and where the patient was identified; one with no such site grants the
patient's demographics only, no site's clinical data.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_share_origin"
down_revision = "0013_account_security"
branch_labels = None
depends_on = None

_SHARERS = ("coordinator", "referring_physician", "radiologist", "specialist")


def upgrade() -> None:
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.add_column(sa.Column("from_site_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_shares_from_site_id_sites", "sites", ["from_site_id"], ["id"]
        )
    op.get_bind().execute(
        sa.text(
            "UPDATE shares SET from_site_id = ("
            " SELECT MIN(m.site_id) FROM memberships m JOIN patient_identifiers i"
            " ON i.site_id = m.site_id"
            " WHERE m.user_id = shares.granted_by_id AND m.role IN :roles"
            " AND CAST(i.patient_id AS VARCHAR(128)) = shares.resource_id"
            ") WHERE resource_kind = 'patient'"
        ).bindparams(sa.bindparam("roles", expanding=True)),
        {"roles": list(_SHARERS)},
    )


def downgrade() -> None:
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_constraint("fk_shares_from_site_id_sites", type_="foreignkey")
        batch_op.drop_column("from_site_id")
