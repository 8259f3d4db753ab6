"""audit: TRUNCATE refused on the trail and its head; the head only moves forward

Revision ID: 0009_audit_truncate_guard
Revises: 0008_live_recording_telestration
"""

from alembic import op

revision = "0009_audit_truncate_guard"
down_revision = "0008_live_recording_telestration"
branch_labels = None
depends_on = None

_REWIND = "audit_head only moves forward"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Row triggers do not fire on TRUNCATE: without a statement trigger, one command
        # would empty the trail past the append-only guard of 0001.
        op.execute(
            """
            CREATE FUNCTION concilium_audit_no_truncate() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in ("audit_events", "audit_head"):
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION concilium_audit_no_truncate()"
            )
        # The head is updated by every append (seq + 1, then the new hash); rewinding it
        # would let a cut tail pass for the whole chain.
        op.execute(
            f"""
            CREATE FUNCTION concilium_audit_head_forward_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.seq < OLD.seq THEN
                    RAISE EXCEPTION '{_REWIND}';
                END IF;
                RETURN NEW;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head "
            "FOR EACH ROW EXECUTE FUNCTION concilium_audit_head_forward_only()"
        )
    else:
        # SQLite has no TRUNCATE: its DELETE without WHERE still fires the row triggers.
        op.execute(
            "CREATE TRIGGER audit_head_no_rewind BEFORE UPDATE ON audit_head "
            "WHEN NEW.seq < OLD.seq OR NEW.id <> OLD.id "
            f"BEGIN SELECT RAISE(ABORT, '{_REWIND}'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
            f"BEGIN SELECT RAISE(ABORT, '{_REWIND}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_head_forward_only ON audit_head")
        op.execute("DROP FUNCTION concilium_audit_head_forward_only()")
        for table in ("audit_events", "audit_head"):
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION concilium_audit_no_truncate()")
    else:
        op.execute("DROP TRIGGER audit_head_no_delete")
        op.execute("DROP TRIGGER audit_head_no_rewind")
