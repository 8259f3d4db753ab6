"""platform: notifications to a person about their own account; second-factor failures
counted across sign-ins; set-up and reset links

Revision ID: 0013_account_security
Revises: 0012_mail_outbox
"""

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0013_account_security"
down_revision = "0012_mail_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("dismissed_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(op.f("ix_notifications_user_id"), "notifications", ["user_id"])
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("mfa_failures", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "account_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", concilium.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["issued_by_id"], ["users.id"], name=op.f("fk_account_links_issued_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_account_links_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_links")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_account_links_secret_hash")),
    )
    op.create_index(op.f("ix_account_links_user_id"), "account_links", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_account_links_user_id"), table_name="account_links")
    op.drop_table("account_links")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("mfa_failures")
    op.drop_index(op.f("ix_notifications_user_id"), table_name="notifications")
    op.drop_table("notifications")
