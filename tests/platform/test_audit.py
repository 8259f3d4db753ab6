"""The audit trail is append-only, hash-chained, and exports as FHIR AuditEvent and syslog."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from concilium.platform import audit
from concilium.platform.audit_checkpoints import read_head
from concilium.platform.db import transaction


def fill(runtime, n=5):
    with transaction(runtime.sessions) as db:
        for i in range(n):
            audit.record(
                db,
                audit.Actor(1, "dr-a", role="radiologist", ip="10.0.0.7"),
                "patient.read",
                "success",
                object_kind="patient",
                object_id=i,
                patient_id=i,
            )


def raw(runtime, sql):
    """An attacker with database rights: bypass the append-only triggers first."""
    with runtime.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
            conn.execute(text(sql))
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
            conn.execute(text(sql))


def verify(runtime):
    """The chain, checked against the checkpoints of the data dir, as the CLI does."""
    with runtime.sessions() as db:
        return audit.verify(db, list(runtime.audit_checkpoints.read()))


def checkpoint(runtime):
    with runtime.sessions() as db:
        seq, digest = read_head(db)
    return runtime.audit_checkpoints.take(seq, digest, runtime.now())


def test_intact_chain_verifies(runtime):
    fill(runtime)
    assert verify(runtime) == []


@pytest.mark.parametrize(
    "verb", ["UPDATE audit_events SET outcome = 'failure'", "DELETE FROM audit_events"]
)
def test_database_refuses_rewrites(runtime, verb):
    fill(runtime, 2)
    with pytest.raises(DBAPIError), runtime.engine.begin() as conn:
        conn.execute(text(f"{verb} WHERE seq = 1"))
    assert verify(runtime) == []


def test_altered_entry_is_detected(runtime):
    fill(runtime)
    raw(runtime, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3")
    problems = verify(runtime)
    assert [(b.seq, b.problem) for b in problems] == [(3, "content altered")]


def test_deleted_entry_is_detected(runtime):
    fill(runtime)
    raw(runtime, "DELETE FROM audit_events WHERE seq = 2")
    problems = verify(runtime)
    assert problems[0].seq == 2 and "missing" in problems[0].problem


def test_truncated_tail_is_detected(runtime):
    fill(runtime)
    raw(runtime, "DELETE FROM audit_events WHERE seq = 5")
    assert any("missing" in b.problem for b in verify(runtime))


def test_rehashed_forgery_is_detected_by_the_next_link(runtime):
    fill(runtime)
    with runtime.sessions() as db:
        event = db.get(audit.AuditEvent, 2)
        event.outcome = "failure"
        forged = audit.chain_hash(event)
        db.rollback()
    raw(runtime, f"UPDATE audit_events SET outcome = 'failure', hash = '{forged}' WHERE seq = 2")
    assert [b.seq for b in verify(runtime)] == [3]


def test_fhir_export_has_balp_shape(runtime):
    fill(runtime, 1)
    with runtime.sessions() as db:
        line = next(audit.export_lines(audit.iter_events(db), "fhir", "concilium.example"))
    resource = json.loads(line)
    assert resource["resourceType"] == "AuditEvent"
    assert resource["action"] == "R"
    assert resource["agent"][0]["who"]["identifier"]["value"] == "dr-a"
    assert resource["agent"][0]["requestor"] is True
    assert resource["agent"][0]["networkString"] == "10.0.0.7"
    assert resource["entity"][0]["what"]["reference"] == "Patient/0"
    assert resource["outcome"]["code"]["code"] == "0"
    assert "IHE.BasicAudit.Read" in resource["meta"]["profile"][0]
    assert resource["source"]["observer"]["display"] == "concilium.example"


SYSLOG = re.compile(
    r"^<(\d+)>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (\S+) concilium - (\S+) "
    r"\[audit@32473 (.+)\] (.+)$"
)


def test_syslog_export_is_rfc5424(runtime):
    fill(runtime, 1)
    with transaction(runtime.sessions) as db:
        audit.record(db, audit.Actor(None, 'x"y]'), "auth.login", "failure")
    with runtime.sessions() as db:
        lines = list(audit.export_lines(audit.iter_events(db), "syslog", "host1"))
    first = SYSLOG.match(lines[0])
    assert first and first.group(1) == str(10 * 8 + 6) and first.group(3) == "patient.read"
    second = SYSLOG.match(lines[1])
    assert second and 'actor="x\\"y\\]"' in second.group(4) and second.group(1) == str(10 * 8 + 4)


def test_concurrent_writers_keep_one_chain(runtime):
    from concurrent.futures import ThreadPoolExecutor

    def write(i):
        with transaction(runtime.sessions) as db:
            audit.record(db, audit.Actor(i, f"u{i}"), "patient.query", "success")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(40)))
    assert verify(runtime) == []
    with runtime.sessions() as db:
        assert audit.chain_length(db) == 40


def test_database_refuses_truncate(runtime):
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; its DELETE fires the row triggers")
    fill(runtime, 2)
    for table in ("audit_events", "audit_head"):
        with pytest.raises(DBAPIError, match="append-only"), runtime.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {table}"))
    assert verify(runtime) == []
    with runtime.sessions() as db:
        assert audit.chain_length(db) == 2


@pytest.mark.parametrize(
    "sql",
    ["UPDATE audit_head SET seq = 1, last_hash = :genesis", "DELETE FROM audit_head"],
)
def test_database_refuses_rewinding_the_head(runtime, sql):
    fill(runtime, 2)
    with pytest.raises(DBAPIError, match="only moves forward"), runtime.engine.begin() as conn:
        conn.execute(text(sql), {"genesis": audit.GENESIS_HASH})
    fill(runtime, 1)
    assert verify(runtime) == []


def bypass_guards(conn):
    """An attacker who owns the tables: every trigger of the trail and its head is off."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER ALL"))
        conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER ALL"))
    else:
        conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        conn.execute(text("DROP TRIGGER audit_head_no_rewind"))


def rewind_head(conn, seq):
    last = conn.execute(text("SELECT hash FROM audit_events WHERE seq = :s"), {"s": seq}).scalar()
    conn.execute(
        text("UPDATE audit_head SET seq = :s, last_hash = :h WHERE id = 1"),
        {"s": seq, "h": last or audit.GENESIS_HASH},
    )


def test_intact_chain_agrees_with_its_checkpoints(runtime):
    fill(runtime, 3)
    checkpoint(runtime)
    fill(runtime, 2)
    checkpoint(runtime)
    checkpoint(runtime)
    assert verify(runtime) == []


def test_wiped_trail_and_rewound_head_are_reported(runtime):
    fill(runtime)
    taken = checkpoint(runtime)
    with runtime.engine.begin() as conn:
        bypass_guards(conn)
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE audit_events"))
        else:
            conn.execute(text("DELETE FROM audit_events"))
        rewind_head(conn, 0)
    with runtime.sessions() as db:
        assert audit.verify(db) == []  # what is left is a valid, empty chain
    [problem] = verify(runtime)
    assert problem.seq == taken.seq == 5
    assert "the chain ends at entry 0: entries cut" in problem.problem
    assert problem.checkpoint == f"{runtime.audit_checkpoints.path}:1"


def test_tail_deleted_with_triggers_disabled_and_head_rewound_is_reported(runtime):
    fill(runtime)
    checkpoint(runtime)
    with runtime.engine.begin() as conn:
        bypass_guards(conn)
        conn.execute(text("DELETE FROM audit_events WHERE seq > 3"))
        rewind_head(conn, 3)
    with runtime.sessions() as db:
        assert audit.verify(db) == []
    assert [(b.seq, b.problem.split(", ")[-1]) for b in verify(runtime)] == [
        (5, "but the chain ends at entry 3: entries cut")
    ]


def test_tail_rewritten_past_a_checkpoint_is_reported(runtime):
    fill(runtime)
    checkpoint(runtime)
    with runtime.engine.begin() as conn:
        bypass_guards(conn)
        conn.execute(text("DELETE FROM audit_events WHERE seq > 3"))
        rewind_head(conn, 3)
    fill(runtime, 4)  # the chain grows past the checkpoint again, with other entries
    [problem] = verify(runtime)
    assert problem.seq == 5 and "the chain was rewritten" in problem.problem


def test_altered_checkpoint_is_reported(runtime):
    fill(runtime)
    checkpoint(runtime)
    path = runtime.audit_checkpoints.path
    genuine = path.read_text()
    path.write_text(genuine + genuine.replace('"seq":5', '"seq":4'))  # shows a shorter chain
    [problem] = verify(runtime)
    assert (problem.seq, problem.checkpoint) == (4, f"{path}:2")
    assert problem.problem == "signature does not match: checkpoint altered"
    path.write_text(genuine + "truncated-or-garbage\n" + genuine[:40] + "\n")
    problems = verify(runtime)
    assert [(b.seq, b.checkpoint) for b in problems] == [(0, f"{path}:2"), (0, f"{path}:3")]
    assert problems[0].problem == "not a checkpoint"
    assert problems[1].problem.startswith("unreadable checkpoint: not JSON")
