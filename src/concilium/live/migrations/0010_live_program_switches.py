"""live: program switches kept in a table of the live service

Revision ID: 0010_live_program_switches
Revises: 0009_audit_truncate_guard
"""

import json

import sqlalchemy as sa
from alembic import op

import concilium.platform.db

revision = "0010_live_program_switches"
down_revision = "0009_audit_truncate_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    switches = op.create_table(
        "live_program_switches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("feed", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", concilium.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_program_switches_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_live_program_switches_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_program_switches")),
    )
    op.create_index(
        op.f("ix_live_program_switches_session_id"),
        "live_program_switches",
        ["session_id"],
        unique=False,
    )
    _carry_over_from_the_audit_trail(switches)


def _carry_over_from_the_audit_trail(switches: sa.Table) -> None:
    """Switches made before were kept only as ``live.program`` audit entries: they are
    copied once, so the recordings of sessions running across the upgrade keep their
    chapters. The audit entries stay as they are."""
    bind = op.get_bind()
    audit = sa.table(
        "audit_events",
        sa.column("seq", sa.Integer()),
        sa.column("at", concilium.platform.db.UTCDateTime(timezone=True)),
        sa.column("actor_id", sa.Integer()),
        sa.column("action", sa.String()),
        sa.column("object_kind", sa.String()),
        sa.column("object_id", sa.String()),
        sa.column("outcome", sa.String()),
        sa.column("detail", sa.Text()),
    )
    sessions = set(bind.execute(sa.text("SELECT id FROM live_sessions")).scalars())
    users = set(bind.execute(sa.text("SELECT id FROM users")).scalars())
    rows = bind.execute(
        sa.select(audit.c.at, audit.c.actor_id, audit.c.object_id, audit.c.detail)
        .where(
            audit.c.action == "live.program",
            audit.c.outcome == "success",
            audit.c.object_kind == "live_session",
        )
        .order_by(audit.c.seq)
    ).all()
    carried = []
    for at, actor_id, object_id, detail in rows:
        if not str(object_id).isdigit() or int(object_id) not in sessions:
            continue
        try:
            feed = json.loads(detail or "{}").get("feed")
        except (ValueError, AttributeError):
            feed = None
        carried.append(
            {
                "session_id": int(object_id),
                "feed": feed if isinstance(feed, int) else None,
                "user_id": actor_id if actor_id in users else None,
                "at": at,
            }
        )
    if carried:
        op.bulk_insert(switches, carried)


def downgrade() -> None:
    op.drop_index(op.f("ix_live_program_switches_session_id"), table_name="live_program_switches")
    op.drop_table("live_program_switches")
