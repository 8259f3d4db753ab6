"""Signed checkpoints of the audit chain's head: signature, file, syslog, and when taken."""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from concilium.app import application
from concilium.assembly import Assembly
from concilium.config import Settings
from concilium.platform import audit
from concilium.platform.audit_checkpoints import (
    AuditCheckpointer,
    Checkpoint,
    CheckpointLog,
    CheckpointSigner,
    checkpoint_due,
    read_head,
    to_syslog,
)
from concilium.platform.db import transaction
from concilium.platform.runtime import Runtime

AT = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
HASH = "ab" * 32


def fill(runtime, n):
    with transaction(runtime.sessions) as db:
        for _ in range(n):
            audit.record(db, audit.Actor(1, "dr-a"), "patient.query", "success")


@pytest.fixture
def udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def test_signature_covers_sequence_hash_and_time():
    key = secrets.token_bytes(32)
    signed = CheckpointSigner(key).sign(42, HASH, AT)
    assert CheckpointSigner(key).authentic(signed)
    for forged in (
        replace(signed, seq=41),
        replace(signed, hash="cd" * 32),
        replace(signed, at=AT - timedelta(microseconds=1)),
    ):
        assert not CheckpointSigner(key).authentic(forged)
    assert not CheckpointSigner(secrets.token_bytes(32)).authentic(signed)


def test_json_line_round_trips_and_refuses_malformed_fields():
    signed = CheckpointSigner(secrets.token_bytes(32)).sign(7, HASH, AT)
    assert Checkpoint.from_json(signed.to_json()) == signed
    fields = json.loads(signed.to_json())
    assert fields["at"] == "2025-03-14T09:26:53.589793Z"
    for bad, message in (
        ({**fields, "seq": "7"}, "seq"),
        ({**fields, "seq": True}, "seq"),
        ({**fields, "hash": HASH.upper()}, "hash"),
        ({**fields, "at": "2025-03-14T09:26:53"}, "offset"),
        ({**fields, "extra": 1}, "fields"),
    ):
        with pytest.raises(ValueError, match=message):
            Checkpoint.from_json(json.dumps(bad))


def test_file_is_private_and_keeps_whole_lines_under_concurrent_appends(tmp_path):
    log = CheckpointLog.in_data_dir(tmp_path, secrets.token_bytes(32))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda seq: log.take(seq, HASH, AT), range(1, 121)))
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700
    readings = list(log.read())
    assert len(readings) == 120 and all(not r.problem for r in readings)
    assert sorted(r.checkpoint.seq for r in readings if r.checkpoint) == list(range(1, 121))


SYSLOG = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>[!-~]{1,255}) "
    r"(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
    r"\[(?P<sdid>[^ =\]\"]+)(?P<params>(?: [^ =\]\"]+=\"(?:[^\"\\\]]|\\.)*\")+)\] (?P<msg>.+)$"
)


def test_syslog_checkpoint_arrives_over_udp_as_rfc5424(tmp_path, udp):
    key = secrets.token_bytes(32)
    log = CheckpointLog.in_data_dir(tmp_path, key, syslog=udp.getsockname())
    taken = log.take(9, HASH, AT)
    datagram, _ = udp.recvfrom(2048)
    message = datagram.decode("ascii")
    match = SYSLOG.match(message)
    assert match, message
    assert match["pri"] == str(10 * 8 + 5)  # authpriv.notice
    assert match["ts"] == "2025-03-14T09:26:53.589793Z"
    assert (match["app"], match["msgid"], match["sdid"]) == (
        "concilium",
        "audit-checkpoint",
        "checkpoint@32473",
    )
    params = dict(re.findall(r' ([^ =]+)="([^"]*)"', match["params"]))
    assert params == {"seq": "9", "hash": HASH, "at": match["ts"], "mac": taken.mac}
    assert Checkpoint.from_json(match["msg"]) == taken
    assert CheckpointSigner(key).authentic(Checkpoint.from_json(match["msg"]))


def test_collector_file_is_read_back_and_other_messages_skipped(tmp_path):
    log = CheckpointLog.in_data_dir(tmp_path / "var", secrets.token_bytes(32))
    taken = log.signer.sign(3, HASH, AT)
    collected = tmp_path / "collector.log"
    collected.write_text(
        "Mar 14 09:26:50 host sshd[1]: session opened\n"
        f"Mar 14 09:26:53 host {to_syslog(taken, 'host')}\n"
    )
    [reading] = log.read([collected])  # the data dir file does not exist
    assert reading.checkpoint == taken and reading.problem == ""
    assert reading.where == f"{collected}:2"


def test_checkpoint_is_due_when_the_chain_moved_and_the_interval_or_count_is_reached():
    every, entries = timedelta(minutes=1), 100
    last = Checkpoint(10, HASH, AT, "00" * 32)
    assert not checkpoint_due(None, (0, audit.GENESIS_HASH), AT, every, entries)
    assert checkpoint_due(None, (1, HASH), AT, every, entries)
    assert not checkpoint_due(last, (10, HASH), AT + timedelta(hours=1), every, entries)
    assert not checkpoint_due(last, (11, HASH), AT + timedelta(seconds=59), every, entries)
    assert checkpoint_due(last, (11, HASH), AT + every, every, entries)
    assert checkpoint_due(last, (110, HASH), AT, every, entries)
    assert checkpoint_due(last, (9, HASH), AT, every, entries)  # went back
    assert checkpoint_due(last, (10, "cd" * 32), AT, every, entries)  # rewritten


def test_checkpointer_takes_one_when_due_and_whatever_moved_at_stop(runtime, clock, caplog):
    fill(runtime, 2)
    checkpointer = AuditCheckpointer(
        runtime.read_sessions,
        runtime.audit_checkpoints,
        runtime.now,
        every=timedelta(minutes=1),
        entries=3,
        poll=60,
    )
    assert checkpointer.tick().seq == 2
    fill(runtime, 2)
    assert checkpointer.tick() is None  # two entries, no minute yet
    fill(runtime, 1)
    assert checkpointer.tick().seq == 5  # three entries
    fill(runtime, 1)
    clock.advance(minutes=1)
    assert checkpointer.tick().seq == 6  # a minute
    fill(runtime, 1)
    assert checkpointer.tick(final=True).seq == 7  # stopping: whatever moved
    assert checkpointer.tick(final=True) is None
    with runtime.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER ALL"))
        else:
            conn.execute(text("DROP TRIGGER audit_head_no_rewind"))
        conn.execute(text("UPDATE audit_head SET seq = 4"))
    with caplog.at_level(logging.ERROR):
        assert checkpointer.tick().seq == 4
    assert "audit chain head went back" in caplog.text
    seqs = [r.checkpoint.seq for r in runtime.audit_checkpoints.read() if r.checkpoint]
    assert seqs == [2, 5, 6, 7, 4]


def test_checkpointer_thread_follows_the_chain(runtime):
    checkpointer = AuditCheckpointer(
        runtime.read_sessions,
        runtime.audit_checkpoints,
        runtime.now,
        every=timedelta(0),
        entries=1,
        poll=0.02,
    )
    fill(runtime, 1)
    checkpointer.start()
    assert checkpointer.last is not None and checkpointer.last.seq == 1  # at start
    try:
        fill(runtime, 2)
        deadline = time.monotonic() + 5
        while (checkpointer.last is None or checkpointer.last.seq < 3) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert checkpointer.last is not None and checkpointer.last.seq == 3
        fill(runtime, 1)
    finally:
        checkpointer.stop()
    assert checkpointer.last.seq == 4  # the last one, at stop


def test_server_checkpoints_at_start_and_stop_to_file_and_syslog(tmp_path, database_url, udp):
    host, port = udp.getsockname()
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        audit_syslog_address=f"{host}:{port}",
        # The platform's own part of serving only: no DICOM listener, no media server.
        dicom_port=0,
        hl7_port=0,
        live_enabled=False,
    )
    runtime = Runtime.start(settings)
    fill(runtime, 2)
    assembly = Assembly.build(settings, runtime)
    app = application(assembly, serve=True)
    with TestClient(app, base_url="https://testserver") as browser:
        assert browser.get("/healthz").status_code == 200
        fill(runtime, 1)
    with runtime.sessions() as db:
        seq, digest = read_head(db)
    runtime.close()
    assert seq == 3
    readings = list(runtime.audit_checkpoints.read())
    assert [(r.checkpoint.seq, r.problem) for r in readings if r.checkpoint] == [(2, ""), (3, "")]
    assert readings[-1].checkpoint.hash == digest
    sent = [Checkpoint.from_json(udp.recv(2048).decode().split("] ", 1)[1]) for _ in readings]
    assert sent == [r.checkpoint for r in readings]


def test_syslog_address_setting_is_host_and_port():
    assert Settings(audit_syslog_address="logs.example.org:514").audit_syslog_destination == (
        "logs.example.org",
        514,
    )
    assert Settings(audit_syslog_address="[::1]:5514").audit_syslog_destination == ("::1", 5514)
    assert Settings().audit_syslog_destination is None
    for bad in ("logs.example.org", "logs:0", "logs:65536", "logs:514/x", "user@logs:514"):
        with pytest.raises(ValueError, match="audit_syslog_address"):
            Settings(audit_syslog_address=bad)
