"""reading: reading groups, rota, routing and assignments

Revision ID: 0022_reading_worklist
Revises: 0021_boards_cases
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0022_reading_worklist"
down_revision = "0021_boards_cases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("local", sa.Boolean(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_groups_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_reading_groups_name")),
    )
    with op.batch_alter_table("reading_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reading_groups_site_id"), ["site_id"], unique=False)

    op.create_table(
        "reading_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("decided_for", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("routed_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_by_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["claimed_by_id"], ["users.id"], name=op.f("fk_reading_assignments_claimed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["reading_groups.id"],
            name=op.f("fk_reading_assignments_group_id_reading_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["reading_orders.id"],
            name=op.f("fk_reading_assignments_order_id_reading_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_assignments")),
        sa.UniqueConstraint("order_id", name=op.f("uq_reading_assignments_order_id")),
    )
    with op.batch_alter_table("reading_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_assignments_claimed_by_id"), ["claimed_by_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_assignments_group_id"), ["group_id"], unique=False
        )

    op.create_table(
        "reading_group_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["reading_groups.id"],
            name=op.f("fk_reading_group_members_group_id_reading_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_reading_group_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_group_members")),
        sa.UniqueConstraint("group_id", "user_id", name=op.f("uq_reading_group_members_group_id")),
    )
    with op.batch_alter_table("reading_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_group_members_group_id"), ["group_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_group_members_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "reading_on_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("end_time", sa.String(length=5), nullable=False),
        sa.Column("weekdays", sa.String(length=7), nullable=False),
        sa.Column("start_weekday", sa.Integer(), nullable=True),
        sa.Column("end_weekday", sa.Integer(), nullable=True),
        sa.Column("starts_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["reading_groups.id"],
            name=op.f("fk_reading_on_call_group_id_reading_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_on_call")),
    )
    with op.batch_alter_table("reading_on_call", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reading_on_call_group_id"), ["group_id"], unique=False)

    op.create_table(
        "reading_routing_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("on_call_only", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["reading_groups.id"],
            name=op.f("fk_reading_routing_rules_group_id_reading_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_routing_rules_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_routing_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_reading_routing_rules_name")),
    )
    with op.batch_alter_table("reading_routing_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_routing_rules_group_id"), ["group_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reading_routing_rules_site_id"), ["site_id"], unique=False
        )

    op.create_table(
        "reading_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["reading_group_members.id"],
            name=op.f("fk_reading_credentials_member_id_reading_group_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_reading_credentials_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_credentials")),
        sa.UniqueConstraint("member_id", "site_id", name=op.f("uq_reading_credentials_member_id")),
    )
    with op.batch_alter_table("reading_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_credentials_member_id"), ["member_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reading_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_credentials_member_id"))

    op.drop_table("reading_credentials")
    with op.batch_alter_table("reading_routing_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_routing_rules_site_id"))
        batch_op.drop_index(batch_op.f("ix_reading_routing_rules_group_id"))

    op.drop_table("reading_routing_rules")
    with op.batch_alter_table("reading_on_call", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_on_call_group_id"))

    op.drop_table("reading_on_call")
    with op.batch_alter_table("reading_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_group_members_user_id"))
        batch_op.drop_index(batch_op.f("ix_reading_group_members_group_id"))

    op.drop_table("reading_group_members")
    with op.batch_alter_table("reading_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_assignments_group_id"))
        batch_op.drop_index(batch_op.f("ix_reading_assignments_claimed_by_id"))

    op.drop_table("reading_assignments")
    with op.batch_alter_table("reading_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_groups_site_id"))

    op.drop_table("reading_groups")
