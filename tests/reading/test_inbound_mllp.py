"""Orders in over HL7 v2/MLLP, end to end: python-hl7's ``mllp_send`` against the running
listener of ``concilium serve`` (``ReadingProcess``), on each database of the suite."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from concilium.platform import audit, patients
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent, Patient
from concilium.reading import hl7v2, senders
from concilium.reading.mllp import FrameReceived, MllpDecoder, frame
from concilium.reading.orders import OrderStatus
from concilium.reading.process import ReadingProcess
from concilium.reading.tables import HL7Message, ImagingOrderRecord, StationRule
from concilium.reading.worklist_store import StepKey, scheduled_steps, set_step_status
from serving import free_port

MLLP_SEND = Path(sys.executable).parent / "mllp_send"
BRIEY_HIS = ("HIS", "CHBRIEY")
PID = "PID|1||IPP001^^^CHBRIEY^PI||Lefèvre^Hélène||19850523|F"
PV1 = "PV1|1|E|URG^^^CHBRIEY|||||10002^Durand^Anne^^^DR"


def msh(kind: str, control_id: str, app: str = "HIS", facility: str = "CHBRIEY") -> str:
    version = "2.5.1" if kind.startswith(("OMI", "ADT")) else "2.3.1"
    return (
        f"MSH|^~\\&|{app}|{facility}|CONCILIUM|GHT|20260307020000||{kind}|{control_id}|P|"
        f"{version}||||||UNICODE UTF-8"
    )


def adt(event: str, control_id: str, *segments: str, pid: str = PID) -> bytes:
    return "\r".join(
        [msh(f"ADT^{event}^ADT_A01", control_id), "EVN||20260307020000", pid, *segments]
    ).encode()


def orc(control: str = "NW", status: str = "SC", placer: str = "PL-1") -> str:
    return (
        f"ORC|{control}|{placer}^HIS|FL-1^RIS||{status}||^^^20260307023000^^S||20260307020000|||"
        "20001^Bernard^Luc^^^DR||||||"
    )


def obr(
    accession: str = "ACC-1", rp: str = "RP-1", sps: str = "SPS-1", modality: str = "CT"
) -> str:
    fields = ["OBR", "1", "PL-1^HIS", "FL-1^RIS", "TDM-THX^Scanner thorax^LOCAL^P1^Protocole 1^L"]
    fields += [""] * 8 + ["Douleur thoracique"]
    fields += ["", "", "20001^Bernard^Luc^^^DR", "", accession, rp, sps]
    fields += ["", "", "", modality]
    fields += ["", "^^^20260307023000^^S", "", "", "", "", "R07.4^Douleur thoracique^CIM10"]
    return "|".join(fields)


def orm(
    control_id: str,
    control: str = "NW",
    status: str = "SC",
    accession: str = "ACC-1",
    pid: str = PID,
) -> bytes:
    return "\r".join(
        [msh("ORM^O01", control_id), pid, PV1, orc(control, status), obr(accession)]
    ).encode()


@dataclass
class Listener:
    port: int
    process: ReadingProcess

    def send(self, tmp_path: Path, *messages: bytes) -> list[hl7v2.Message]:
        """Send with ``mllp_send`` (one connection, in order); the acknowledgments read."""
        path = tmp_path / f"batch-{id(messages)}.hl7"
        path.write_bytes(b"".join(frame(m) for m in messages))
        result = subprocess.run(
            [str(MLLP_SEND), "-p", str(self.port), "-f", str(path), "127.0.0.1"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        events = MllpDecoder(1 << 20).feed(result.stdout)
        return [hl7v2.parse_message(e.payload) for e in events if isinstance(e, FrameReceived)]


class NoArchive:
    """The services built before reading in a process without the archive."""

    def service(self, kind: type) -> object:
        raise LookupError(kind.__name__)


@contextmanager
def serving(runtime, settings) -> Iterator[Listener]:
    """``ReadingProcess.serve()`` on a free port, in an event loop of its own thread."""
    settings.hl7_port = free_port()
    process = ReadingProcess(runtime, NoArchive())
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with process.serve():
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield Listener(settings.hl7_port, process)
    finally:
        loop.call_soon_threadsafe(lambda: stop.set() if stop else None)
        thread.join(30)
        loop.close()


@pytest.fixture
def listener(runtime, settings) -> Iterator[Listener]:
    with serving(runtime, settings) as running:
        yield running


@pytest.fixture
def briey_his(world, runtime):
    with transaction(runtime.sessions) as db:
        senders.add_sender(
            db, audit.SYSTEM, site_id=world.briey.id, application="HIS", facility="CHBRIEY"
        )
    return world


def error_text(ack: hl7v2.Message) -> str:
    """MSA-3, the text of the (first) error, in every version."""
    return ack.require("MSA").get(3)


def error_segment(ack: hl7v2.Message) -> str:
    """The segment of the (first) error: ERR-2 from v2.5, ERR-1 before."""
    err = ack.require("ERR")
    return err.get(2) if ack.header.version >= "2.5" else err.get(1)


def msa(ack: hl7v2.Message) -> tuple[str, str]:
    segment = ack.require("MSA")
    return segment.get(1), segment.get(2)


def count(runtime, model, *where) -> int:
    with runtime.sessions() as db:
        return db.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_adt_then_orm_are_accepted_and_stored(briey_his, runtime, listener, tmp_path):
    acks = listener.send(tmp_path, adt("A01", "ADT-1", PV1), orm("ORM-1"))

    assert [msa(a) for a in acks] == [("AA", "ADT-1"), ("AA", "ORM-1")]
    with runtime.sessions() as db:
        patient = patients.find_by_identifier(db, briey_his.briey.id, "IPP001")
        assert patient is not None
        assert (patient.family_name, patient.given_name, patient.sex) == ("Lefèvre", "Hélène", "F")
        order = db.execute(select(ImagingOrderRecord)).scalar_one()
        assert (order.site_id, order.patient_id, order.accession_number) == (
            briey_his.briey.id,
            patient.id,
            "ACC-1",
        )
        assert order.status == "SCHEDULED"
        assert order.procedure_code == "TDM-THX"
        assert order.requesting_physician_name == "Bernard^Luc^^DR"
        assert order.referring_physician_name == "Durand^Anne^^DR"
        assert order.priority == "S"
        (step,) = order.steps
        assert (step.step_id, step.modality, step.status) == ("SPS-1", "CT", "SCHEDULED")
        # Every message in and out is kept raw.
        logged = db.execute(select(HL7Message).order_by(HL7Message.id)).scalars().all()
        assert [(m.direction, m.message_type, m.ack_code) for m in logged] == [
            ("in", "ADT^A01^ADT_A01", "AA"),
            ("out", "ACK", "AA"),
            ("in", "ORM^O01", "AA"),
            ("out", "ACK", "AA"),
        ]
        assert logged[2].raw == orm("ORM-1")
        assert b"MSA|AA|ORM-1" in logged[3].raw
        # The patient's creation is audited with the sender as actor.
        created = db.execute(
            select(AuditEvent).where(AuditEvent.action == "patient.create")
        ).scalar_one()
        assert created.actor == "hl7:HIS@CHBRIEY"
        items = scheduled_steps(db, [briey_his.briey.id])
        assert [(i.patient_identifier, i.accession_number, i.priority) for i in items] == [
            ("IPP001", "ACC-1", "STAT")
        ]
        assert scheduled_steps(db, [briey_his.metz.id]) == []


def test_omi_with_two_ipc_gives_two_steps(briey_his, runtime, listener, tmp_path):
    ipc1 = "IPC|ACC-5|RP-5|1.2.250.1.59.5|SPS-5|CT|P1^Sans injection^L|SCANNER 1|SALLE 2|CT01"
    ipc2 = "IPC|ACC-5|RP-5|1.2.250.1.59.5|SPS-6|CT||SCANNER 2||CT02"
    raw = "\r".join(
        [msh("OMI^O23^OMI_O23", "OMI-1"), PID, PV1, orc(), "TQ1|||||||20260307023000||S",
         obr("ACC-5", "RP-5", "SPS-5"), ipc1, ipc2]
    ).encode()  # fmt: skip

    (ack,) = listener.send(tmp_path, raw)

    assert msa(ack) == ("AA", "OMI-1")
    with runtime.sessions() as db:
        order = db.execute(select(ImagingOrderRecord)).scalar_one()
        assert order.study_instance_uid == "1.2.250.1.59.5"
        assert [(s.step_id, s.station_ae_title, s.description) for s in order.steps] == [
            ("SPS-5", "CT01", "Sans injection"),
            ("SPS-6", "CT02", "Scanner thorax"),
        ]
        ct02 = scheduled_steps(db, None, station_ae="CT02")
        assert [i.step_id for i in ct02] == ["SPS-6"]
        # MPPS: the step starts, then the order completes with its last step.
        key = StepKey(briey_his.briey.id, "ACC-5", "RP-5", "SPS-5")
        assert set_step_status(db, key, OrderStatus.IN_PROGRESS).order_status == "IN_PROGRESS"
        set_step_status(db, key, OrderStatus.COMPLETED)
        done = set_step_status(
            db, StepKey(briey_his.briey.id, "ACC-5", "RP-5", "SPS-6"), OrderStatus.COMPLETED
        )
        assert done.order_status == "COMPLETED"


def test_cancel_ends_the_order_and_its_steps(briey_his, runtime, listener, tmp_path):
    acks = listener.send(tmp_path, orm("NEW-1"), orm("CAN-1", control="CA", status="CA"))

    assert [msa(a)[0] for a in acks] == ["AA", "AA"]
    with runtime.sessions() as db:
        order = db.execute(select(ImagingOrderRecord)).scalar_one()
        assert order.status == "CANCELLED"
        assert [s.status for s in order.steps] == ["CANCELLED"]
        assert scheduled_steps(db, None) == []


def test_discontinue_and_complete(briey_his, runtime, listener, tmp_path):
    acks = listener.send(
        tmp_path,
        orm("N-1"),
        orm("XO-1", control="XO", status="CM"),
        orm("N-2", accession="ACC-2"),
        orm("DC-2", control="DC", status="DC", accession="ACC-2"),
    )

    assert [msa(a)[0] for a in acks] == ["AA"] * 4
    with runtime.sessions() as db:
        states = dict(
            db.execute(select(ImagingOrderRecord.accession_number, ImagingOrderRecord.status)).all()
        )
    assert states == {"ACC-1": "COMPLETED", "ACC-2": "DISCONTINUED"}


def test_a_repeated_control_id_gets_the_same_ack_and_changes_nothing(
    briey_his, runtime, listener, tmp_path
):
    (first,) = listener.send(tmp_path, orm("SAME-1"))
    # The same control ID again, even with another content (a cancel): answered as before.
    (again,) = listener.send(tmp_path, orm("SAME-1", control="CA", status="CA"))

    assert msa(first) == msa(again) == ("AA", "SAME-1")
    assert first.header.control_id == again.header.control_id
    with runtime.sessions() as db:
        order = db.execute(select(ImagingOrderRecord)).scalar_one()
        assert order.status == "SCHEDULED"
        repeat = db.execute(
            select(HL7Message).where(HL7Message.repeat_of_id.is_not(None))
        ).scalar_one()
        assert repeat.raw == orm("SAME-1", control="CA", status="CA")
        answers = (
            db.execute(select(HL7Message.raw).where(HL7Message.direction == "out")).scalars().all()
        )
        assert answers[0] == answers[1]
    assert count(runtime, Patient) == 1


def test_an_unregistered_sender_is_refused_audited_and_logged(world, runtime, listener, tmp_path):
    raw = "\r".join(
        [msh("ORM^O01", "UNK-1", app="RIS", facility="ELSEWHERE"), PID, orc(), obr()]
    ).encode()

    (ack,) = listener.send(tmp_path, raw)

    assert msa(ack) == ("AR", "UNK-1")
    assert "not registered" in error_text(ack)
    assert count(runtime, ImagingOrderRecord) == 0
    assert count(runtime, Patient) == 0
    with runtime.sessions() as db:
        logged = db.execute(select(HL7Message).where(HL7Message.direction == "in")).scalar_one()
        assert (logged.raw, logged.ack_code, logged.site_id) == (raw, "AR", None)
        refusal = db.execute(
            select(AuditEvent).where(AuditEvent.action == "hl7.message.receive")
        ).scalar_one()
        assert (refusal.outcome, refusal.actor) == ("refused", "hl7:RIS@ELSEWHERE")


@pytest.mark.parametrize(
    ("raw", "code", "where"),
    [
        (
            b"MSH|^~\\&|HIS|CHBRIEY|CONCILIUM|GHT|20260307020000||ORM^O01|BAD-1|P\rPID|1||X",
            "AE",
            "MSH",
        ),
        (
            "\r".join([msh("ADT^A99^ADT_A01", "BAD-2"), PID]).encode(),
            "AR",
            "MSH",
        ),
        ("\r".join([msh("ORM^O01", "BAD-3"), PV1, orc(), obr()]).encode(), "AE", "PID"),
    ],
    ids=["bad-msh", "unknown-trigger", "missing-pid"],
)
def test_malformed_messages_are_answered_with_err_kept_and_the_listener_goes_on(
    briey_his, runtime, listener, tmp_path, raw, code, where
):
    (ack,) = listener.send(tmp_path, raw)

    assert ack.require("MSA").get(1) == code
    assert error_segment(ack) == where
    assert count(runtime, ImagingOrderRecord) == 0
    with runtime.sessions() as db:
        kept = db.execute(select(HL7Message).where(HL7Message.direction == "in")).scalar_one()
        assert kept.raw == raw and kept.ack_code == code and kept.error
    # Another connection is served as usual.
    (ok,) = listener.send(tmp_path, orm("GOOD-1"))
    assert msa(ok) == ("AA", "GOOD-1")


def test_a_bad_connection_does_not_stop_another(briey_his, runtime, listener, tmp_path):
    with socket.create_connection(("127.0.0.1", listener.port)) as stuck:
        stuck.sendall(b"\x0bMSH|^~\\&|HIS|CHBRIEY|half a frame")  # never ends
        (ok,) = listener.send(tmp_path, orm("WHILE-STUCK"))
    assert msa(ok) == ("AA", "WHILE-STUCK")


def test_merge_then_order_for_the_merged_id_lands_on_the_survivor(
    briey_his, runtime, listener, tmp_path
):
    old = "PID|1||IPP-OLD^^^CHBRIEY^PI||Lefèvre^Hélène||19850523|F"
    merge = adt("A40", "MRG-1", "MRG|IPP-OLD^^^CHBRIEY^PI")
    acks = listener.send(
        tmp_path,
        adt("A04", "A-OLD", pid=old),
        orm("ORM-OLD", accession="ACC-OLD", pid=old),
        adt("A01", "A-NEW"),
        merge,
        orm("ORM-AFTER", accession="ACC-NEW", pid=old),
    )

    assert [msa(a)[0] for a in acks] == ["AA"] * 5
    with runtime.sessions() as db:
        survivor = patients.find_by_identifier(db, briey_his.briey.id, "IPP001")
        assert survivor is not None
        assert patients.find_by_identifier(db, briey_his.briey.id, "IPP-OLD") is None
        owners = dict(
            db.execute(
                select(ImagingOrderRecord.accession_number, ImagingOrderRecord.patient_id)
            ).all()
        )
        assert owners == {"ACC-OLD": survivor.id, "ACC-NEW": survivor.id}
        assert {i.patient_identifier for i in scheduled_steps(db, None)} == {"IPP001"}
        merged = db.execute(
            select(AuditEvent).where(AuditEvent.action == "patient.merge")
        ).scalar_one()
        assert merged.patient_id == survivor.id


def test_an_order_never_moves_to_another_patient(briey_his, runtime, listener, tmp_path):
    other = "PID|1||IPP-OTHER^^^CHBRIEY^PI||Martin^Paul||19700101|M"
    acks = listener.send(tmp_path, orm("O-1"), orm("O-2", control="XO", pid=other))

    assert [msa(a)[0] for a in acks] == ["AA", "AE"]
    assert "another patient" in error_text(acks[1])
    with runtime.sessions() as db:
        order = db.execute(select(ImagingOrderRecord)).scalar_one()
        first = patients.find_by_identifier(db, briey_his.briey.id, "IPP001")
        assert first is not None and order.patient_id == first.id
        # Nothing of the refused message was kept but the message itself.
        assert patients.find_by_identifier(db, briey_his.briey.id, "IPP-OTHER") is None


def test_a47_changes_the_identifier(briey_his, runtime, listener, tmp_path):
    change = adt(
        "A47", "CHG-1", "MRG|IPP001^^^CHBRIEY^PI",
        pid="PID|1||IPP777^^^CHBRIEY^PI||Lefèvre^Hélène||19850523|F",
    )  # fmt: skip
    acks = listener.send(tmp_path, adt("A01", "A-1"), orm("O-1"), change)

    assert [msa(a)[0] for a in acks] == ["AA", "AA", "AA"]
    with runtime.sessions() as db:
        assert patients.find_by_identifier(db, briey_his.briey.id, "IPP001") is None
        moved = patients.find_by_identifier(db, briey_his.briey.id, "IPP777")
        assert moved is not None
        (item,) = scheduled_steps(db, None)
        assert (item.patient_id, item.patient_identifier) == (moved.id, "IPP777")


def test_station_rules_give_the_station_when_the_order_names_none(
    briey_his, runtime, listener, tmp_path
):
    site = briey_his.briey.id
    with transaction(runtime.sessions) as db:
        db.add(StationRule(site_id=site, modality="CT", station_ae_title="BRIEY_CT1"))
        db.add(
            StationRule(
                site_id=site, modality="CT", procedure_code="TDM-THX", station_ae_title="BRIEY_CT2"
            )
        )
        db.add(StationRule(site_id=site, modality="MR", station_ae_title="BRIEY_MR1"))
    mr = "\r".join(
        [msh("ORM^O01", "MR-1"), PID, PV1, orc(placer="PL-2"), obr("ACC-MR", modality="MR")]
    )
    acks = listener.send(tmp_path, orm("CT-1"), mr.encode())

    assert [msa(a)[0] for a in acks] == ["AA", "AA"]
    with runtime.sessions() as db:
        stations = {i.accession_number: i.station_ae_title for i in scheduled_steps(db, [site])}
    assert stations == {"ACC-1": "BRIEY_CT2", "ACC-MR": "BRIEY_MR1"}


def test_four_connections_at_once_each_message_stored_once(briey_his, runtime, listener, tmp_path):
    batches = []
    for n in range(4):
        path = tmp_path / f"conn-{n}.hl7"
        messages = [orm(f"C{n}-{i}", accession=f"A{n}-{i}") for i in range(5)]
        # Every connection also sends the same control ID: stored once, answered alike.
        messages.append(orm("SHARED-1", accession="SHARED"))
        path.write_bytes(b"".join(frame(m) for m in messages))
        batches.append(path)
    senders_ = [
        subprocess.Popen(
            [str(MLLP_SEND), "-p", str(listener.port), "-f", str(path), "127.0.0.1"],
            stdout=subprocess.PIPE,
        )
        for path in batches
    ]
    outputs = [p.communicate(timeout=120)[0] for p in senders_]

    acks = [
        hl7v2.parse_message(e.payload)
        for out in outputs
        for e in MllpDecoder(1 << 20).feed(out)
        if isinstance(e, FrameReceived)
    ]
    refused = [error_text(a) for a in acks if msa(a)[0] != "AA"]
    assert len(acks) == 24 and refused == []
    shared = {a.header.control_id for a in acks if msa(a)[1] == "SHARED-1"}
    assert len(shared) == 1  # the very same acknowledgment every time
    assert count(runtime, ImagingOrderRecord) == 21
    assert count(runtime, HL7Message, HL7Message.repeat_of_id.is_not(None)) == 3


def test_an_oversized_message_is_refused_and_the_next_one_served(
    world, runtime, settings, tmp_path
):
    with transaction(runtime.sessions) as db:
        senders.add_sender(
            db, audit.SYSTEM, site_id=world.briey.id, application="HIS", facility="CHBRIEY"
        )
    settings.hl7_max_message_bytes = 2048
    big = "\r".join(
        [msh("ORM^O01", "BIG-1"), PID, PV1, orc(), obr(), "NTE|1||" + "x" * 4000]
    ).encode()
    with serving(runtime, settings) as small:
        acks = small.send(tmp_path, big, orm("AFTER-BIG"))
    assert [msa(a) for a in acks] == [("AR", "BIG-1"), ("AA", "AFTER-BIG")]
    assert "limit" in error_text(acks[0])
