"""imaging: a DICOM node's network identity (where it may call from, its TLS certificate)

Revision ID: 0015_imaging_ae_identity
Revises: 0014_share_origin

Nodes registered before keep working from where they are registered: a node registered by
its IP address may call from that address only (``networks`` becomes that address, /32 or
/128); a node registered by a host name keeps ``networks`` empty, which means the addresses
that name resolves to when it calls. No certificate is bound to them: over TLS they present
any certificate of the trusted authority that is not registered to another node.
"""

import ipaddress

import sqlalchemy as sa
from alembic import op

revision = "0015_imaging_ae_identity"
down_revision = "0014_share_origin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("imaging_remote_aes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("networks", sa.String(length=1000), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("certificate", sa.String(length=400), nullable=False, server_default="")
        )
    bind = op.get_bind()
    nodes = sa.table(
        "imaging_remote_aes", sa.column("id"), sa.column("host"), sa.column("networks")
    )
    for node_id, host in bind.execute(sa.select(nodes.c.id, nodes.c.host)).all():
        try:
            address = ipaddress.ip_address(str(host).strip())
        except ValueError:
            continue
        network = ipaddress.ip_network(address)
        bind.execute(nodes.update().where(nodes.c.id == node_id).values(networks=str(network)))


def downgrade() -> None:
    with op.batch_alter_table("imaging_remote_aes", schema=None) as batch_op:
        batch_op.drop_column("certificate")
        batch_op.drop_column("networks")
