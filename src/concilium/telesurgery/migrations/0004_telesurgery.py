"""telesurgery: procedures, gateways, keys, qualifications, timeline

Revision ID: 0004_telesurgery
Revises: 0003_live
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0004_telesurgery"
down_revision = "0003_live"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telesurgery_procedures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("console_site_id", sa.Integer(), nullable=False),
        sa.Column("robot_site_id", sa.Integer(), nullable=False),
        sa.Column("surgeon_id", sa.Integer(), nullable=False),
        sa.Column("local_team_ids", sa.JSON(), nullable=False),
        sa.Column("robot_name", sa.String(length=100), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["console_site_id"],
            ["sites.id"],
            name=op.f("fk_telesurgery_procedures_console_site_id_sites"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_telesurgery_procedures_created_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_telesurgery_procedures_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["robot_site_id"],
            ["sites.id"],
            name=op.f("fk_telesurgery_procedures_robot_site_id_sites"),
        ),
        sa.ForeignKeyConstraint(
            ["surgeon_id"], ["users.id"], name=op.f("fk_telesurgery_procedures_surgeon_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telesurgery_procedures")),
    )
    with op.batch_alter_table("telesurgery_procedures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telesurgery_procedures_console_site_id"),
            ["console_site_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_telesurgery_procedures_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_telesurgery_procedures_robot_site_id"), ["robot_site_id"], unique=False
        )

    op.create_table(
        "telesurgery_gateways",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("procedure_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("public_name", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("enrolled_by_id", sa.Integer(), nullable=True),
        sa.Column("enrolled_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolled_by_id"],
            ["users.id"],
            name=op.f("fk_telesurgery_gateways_enrolled_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["procedure_id"],
            ["telesurgery_procedures.id"],
            name=op.f("fk_telesurgery_gateways_procedure_id_telesurgery_procedures"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_telesurgery_gateways_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telesurgery_gateways")),
        sa.UniqueConstraint(
            "procedure_id", "role", name=op.f("uq_telesurgery_gateways_procedure_id")
        ),
        sa.UniqueConstraint("token_hash", name=op.f("uq_telesurgery_gateways_token_hash")),
    )
    with op.batch_alter_table("telesurgery_gateways", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telesurgery_gateways_procedure_id"), ["procedure_id"], unique=False
        )

    op.create_table(
        "telesurgery_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("procedure_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["issued_by_id"], ["users.id"], name=op.f("fk_telesurgery_keys_issued_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["procedure_id"],
            ["telesurgery_procedures.id"],
            name=op.f("fk_telesurgery_keys_procedure_id_telesurgery_procedures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telesurgery_keys")),
        sa.UniqueConstraint(
            "procedure_id", "key_id", name=op.f("uq_telesurgery_keys_procedure_id")
        ),
    )
    with op.batch_alter_table("telesurgery_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telesurgery_keys_procedure_id"), ["procedure_id"], unique=False
        )

    op.create_table(
        "telesurgery_qualifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("procedure_id", sa.Integer(), nullable=False),
        sa.Column("measured_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=False),
        sa.Column("html_path", sa.Text(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["procedure_id"],
            ["telesurgery_procedures.id"],
            name=op.f("fk_telesurgery_qualifications_procedure_id_telesurgery_procedures"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_telesurgery_qualifications_recorded_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telesurgery_qualifications")),
    )
    with op.batch_alter_table("telesurgery_qualifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telesurgery_qualifications_procedure_id"), ["procedure_id"], unique=False
        )

    op.create_table(
        "telesurgery_timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("procedure_id", sa.Integer(), nullable=False),
        sa.Column("at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["procedure_id"],
            ["telesurgery_procedures.id"],
            name=op.f("fk_telesurgery_timeline_procedure_id_telesurgery_procedures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telesurgery_timeline")),
    )
    with op.batch_alter_table("telesurgery_timeline", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telesurgery_timeline_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_telesurgery_timeline_procedure_id"), ["procedure_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("telesurgery_timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telesurgery_timeline_procedure_id"))
        batch_op.drop_index(batch_op.f("ix_telesurgery_timeline_at"))

    op.drop_table("telesurgery_timeline")
    with op.batch_alter_table("telesurgery_qualifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telesurgery_qualifications_procedure_id"))

    op.drop_table("telesurgery_qualifications")
    with op.batch_alter_table("telesurgery_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telesurgery_keys_procedure_id"))

    op.drop_table("telesurgery_keys")
    with op.batch_alter_table("telesurgery_gateways", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telesurgery_gateways_procedure_id"))

    op.drop_table("telesurgery_gateways")
    with op.batch_alter_table("telesurgery_procedures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telesurgery_procedures_robot_site_id"))
        batch_op.drop_index(batch_op.f("ix_telesurgery_procedures_patient_id"))
        batch_op.drop_index(batch_op.f("ix_telesurgery_procedures_console_site_id"))

    op.drop_table("telesurgery_procedures")
