"""Procedures on the platform: planning, enrolment, keys, qualification, START and timeline."""

from __future__ import annotations

import asyncio
import json
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from concilium import live
from concilium.imaging import Archive
from concilium.live import LiveSession, LiveSessions, MediaOutputs
from concilium.live.feeders import SourceFeeds
from concilium.live.hls import HlsBroadcasts
from concilium.live.runtime import LiveRuntime
from concilium.platform import accounts, audit, patients
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.tables import AuditEvent
from concilium.telesurgery import procedures, readiness
from concilium.telesurgery import video as procedure_video
from concilium.telesurgery.link import load_keys
from concilium.telesurgery.link_status import LinkStatusBoard
from concilium.telesurgery.qualification import (
    Measurements,
    QualificationReport,
    QualificationThresholds,
    judge,
)
from concilium.telesurgery.safety import INTERCONTINENTAL, SafetyThresholds
from concilium.telesurgery.tables import Procedure

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


# --- the pure START decision ----------------------------------------------------------------


def facts(**overrides: object) -> readiness.StartFacts:
    values: dict[str, object] = {
        "status": "planned",
        "last_passing_qualification_at": NOW - timedelta(hours=1),
        "consent": True,
        "key_issued": True,
        "gateways": frozenset({"console", "robot"}),
    }
    values.update(overrides)
    return readiness.StartFacts(**values)  # type: ignore[arg-type]


def test_start_is_allowed_when_every_condition_holds():
    assert readiness.may_start(facts(), NOW, DAY) == []


def test_start_needs_a_passing_qualification():
    assert readiness.may_start(facts(last_passing_qualification_at=None), NOW, DAY) == [
        "no passing link qualification"
    ]


def test_a_stale_qualification_does_not_count():
    stale = facts(last_passing_qualification_at=NOW - DAY - timedelta(seconds=1))
    assert readiness.may_start(stale, NOW, DAY) == [
        "the last passing link qualification is older than 24 h"
    ]
    fresh = facts(last_passing_qualification_at=NOW - DAY)
    assert readiness.may_start(fresh, NOW, DAY) == []


def test_start_needs_consent_and_keys_and_both_gateways():
    reasons = readiness.may_start(
        facts(consent=False, key_issued=False, gateways=frozenset({"console"})), NOW, DAY
    )
    assert reasons == [
        "the robot gateway is not enrolled",
        "no link keys have been issued to the gateways",
        "the patient's consent for telesurgery is not recorded",
    ]


def test_a_started_procedure_does_not_start_again():
    assert readiness.may_start(facts(status="started"), NOW, DAY) == [
        "the procedure is started, not planned"
    ]


# --- thresholds --------------------------------------------------------------------------


def test_thresholds_are_completed_with_defaults_and_outage_follows_the_watchdog():
    effective = procedures.effective_thresholds({"safety": {"watchdog_ms": 40.0}})
    assert effective["link_class"] == "lan"
    assert effective["safety"]["watchdog_ms"] == 40.0
    assert effective["safety"]["latency_halt_ms"] == 200.0
    assert effective["qualification"]["max_outage_ms"] == 40.0
    assert effective["limits"]["workspace_max_mm"] == [150.0, 150.0, 150.0]


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"safety": {"watchdog_m": 1}}, "unknown safety threshold"),
        ({"safety": {"latency_warning_ms": 300}}, "must be below"),
        ({"network": {}}, "unknown threshold section"),
        ({"limits": {"max_jump_mm": -1}}, "positive"),
        ({"link_class": "interplanetary"}, "unknown link class 'interplanetary'"),
        ({"safety": 3}, "section safety must be a table"),
    ],
)
def test_bad_thresholds_are_refused(sections, message):
    with pytest.raises(InvalidInput, match=message):
        procedures.effective_thresholds(sections)


def test_a_link_class_is_the_base_the_procedure_file_overrides_value_by_value():
    effective = procedures.effective_thresholds(
        {"safety": {"watchdog_ms": 40.0}, "limits": {"max_jump_mm": 3.0}}, "intercontinental"
    )
    assert effective["link_class"] == "intercontinental"
    assert effective["safety"]["command_freshness_ms"] == 250.0
    assert effective["safety"]["latency_halt_ms"] == 300.0
    assert effective["safety"]["watchdog_ms"] == 40.0
    assert effective["limits"]["max_velocity_mm_s"] == 120.0
    assert effective["limits"]["max_jump_mm"] == 3.0
    assert effective["qualification"]["max_outage_ms"] == 40.0
    # The class can be named by the file itself, as the gateways read it.
    named = procedures.effective_thresholds({"link_class": "intercontinental"})
    assert named["safety"] == INTERCONTINENTAL.sections()["safety"]
    with pytest.raises(InvalidInput, match="names link class 'lan', not 'intercontinental'"):
        procedures.effective_thresholds({"link_class": "lan"}, "intercontinental")
    # A file value the class's other values make inconsistent is refused, not clamped.
    with pytest.raises(InvalidInput, match="must not exceed latency_halt_ms"):
        procedures.effective_thresholds({"safety": {"latency_halt_ms": 200.0}}, "intercontinental")


# --- with a database ----------------------------------------------------------------------


@dataclass
class Planned:
    procedure_id: int
    patient_id: int
    surgeon: audit.Actor
    engineer: audit.Actor


def report(go: bool) -> QualificationReport:
    """A qualification report without a network run: the verdict is the real ``judge``."""
    m = Measurements(duration_s=1.0, rate_hz=100.0, bitrate_bps=1e6, commands_sent=100)
    m.commands_received = 100
    m.rtt_ms = {"p50": 150.0, "p99": 152.0, "p999": 153.0 if go else 400.0, "max": 160.0}
    m.command_age_ms = {"p50": 151.0, "p99": 153.0, "p999": 154.0, "max": 155.0}
    m.jitter_ms = {"p50": 0.5, "p99": 1.0, "p999": 2.0, "max": 3.0}
    m.throughput_bps = 1e6
    thresholds = QualificationThresholds()
    safety = INTERCONTINENTAL.safety
    verdict = judge(m, thresholds, safety)
    return QualificationReport("intercontinental-12000km", "x", thresholds, safety, m, verdict)


@pytest.fixture
def planned(world) -> Planned:
    surgeon = world.user("metz-surgeon", (world.metz, "specialist"))
    engineer = world.user("briey-engineer", (world.briey, "engineer"))
    nurse = world.user("briey-nurse", (world.briey, "coordinator"))
    with transaction(world.runtime.sessions) as db:
        actor = audit.Actor(surgeon.id, surgeon.username)
        patient = patients.create_patient(
            db, actor, world.briey.id, "BRY-7", patients.Demographics("Martin", "Paul")
        )
        procedure = procedures.create_procedure(
            db,
            actor,
            title="Remote cholecystectomy",
            console_site_id=world.metz.id,
            robot_site_id=world.briey.id,
            surgeon_id=surgeon.id,
            local_team_ids=[nurse.id],
            robot_name="Arm-1",
            patient_id=patient.id,
            thresholds={"safety": {"watchdog_ms": 60.0}},
            now=NOW,
        )
        return Planned(
            procedure.id,
            patient.id,
            actor,
            audit.Actor(engineer.id, engineer.username),
        )


def test_planning_checks_the_people_and_the_sites(world, planned):
    with transaction(world.runtime.sessions) as db:
        procedure = db.get(Procedure, planned.procedure_id)
        assert procedure.thresholds["qualification"]["max_outage_ms"] == 60.0
        target = procedures.procedure_target(procedure)
        assert target.site_ids == {world.metz.id, world.briey.id}
        assert target.patient_id == planned.patient_id
        common = {
            "title": "x",
            "surgeon_id": planned.surgeon.user_id,
            "robot_name": "Arm",
            "patient_id": planned.patient_id,
            "now": NOW,
        }
        with pytest.raises(InvalidInput, match="two different sites"):
            procedures.create_procedure(
                db,
                planned.surgeon,
                console_site_id=world.metz.id,
                robot_site_id=world.metz.id,
                **common,
            )
        nancy = accounts.create_site(db, audit.SYSTEM, "CHRU Nancy", "540023264")
        elsewhere = patients.create_patient(
            db, planned.surgeon, nancy.id, "NCY-1", patients.Demographics("Roux", "Eva")
        )
        with pytest.raises(InvalidInput, match="not identified at either site"):
            procedures.create_procedure(
                db,
                planned.surgeon,
                console_site_id=world.metz.id,
                robot_site_id=world.briey.id,
                **{**common, "patient_id": elsewhere.id},
            )
        with pytest.raises(InvalidInput, match="specialist role at the console site"):
            procedures.create_procedure(
                db,
                planned.surgeon,
                console_site_id=world.briey.id,
                robot_site_id=world.metz.id,
                **common,
            )


@pytest.mark.timing  # the qualification measures command ages: alone, not beside other tests
def test_the_link_class_is_recorded_and_qualification_judges_by_its_thresholds(world, planned):
    with transaction(world.runtime.sessions) as db:
        lan = db.get(Procedure, planned.procedure_id)
        patient_id, surgeon_id = lan.patient_id, lan.surgeon_id
        far = procedures.create_procedure(
            db,
            planned.surgeon,
            title="Remote nephrectomy",
            console_site_id=world.metz.id,
            robot_site_id=world.briey.id,
            surgeon_id=surgeon_id,
            robot_name="Arm-1",
            patient_id=patient_id,
            link_class="intercontinental",
            now=NOW,
        )
        assert procedures.link_class_of(lan) == "lan"
        assert procedures.link_class_of(far) == "intercontinental"
        assert far.thresholds["safety"]["command_freshness_ms"] == 250.0
        assert procedures.timeline(db, far)[-1].detail == "planned (link class intercontinental)"
        db.expunge(lan)
        db.expunge(far)
    # The same 12,000 km link: no-go for the procedure planned on the defaults (its commands
    # would be stale), within the freshness budget of the one planned for the distance.
    for procedure, fresh in ((lan, False), (far, True)):
        report = readiness.run_qualification(
            procedure, "intercontinental-12000km", 0.5, rate_hz=200, bitrate_bps=1e6
        )
        assert report.safety == SafetyThresholds.from_mapping(procedure.thresholds["safety"])
        assert report.link_class == procedures.link_class_of(procedure)
        criterion = next(c for c in report.verdict.criteria if c.name == "command_age_p999_ms")
        assert criterion.passed is fresh, report.verdict.reasons


def test_keys_need_both_gateways_and_are_written_0600_never_stored(world, planned, tmp_path):
    with transaction(world.runtime.sessions) as db:
        procedure = db.get(Procedure, planned.procedure_id)
        with pytest.raises(Conflict, match="console and robot"):
            readiness.issue_keys(db, planned.engineer, procedure, tmp_path, NOW)
        _, console_token = readiness.enrol_gateway(
            db, planned.engineer, procedure, "console", "198.51.100.4:0", NOW
        )
        readiness.enrol_gateway(db, planned.engineer, procedure, "robot", "203.0.113.7:18950", NOW)
        first, _ = readiness.issue_keys(db, planned.engineer, procedure, tmp_path, NOW)
        second, paths = readiness.issue_keys(db, planned.engineer, procedure, tmp_path, NOW)
        assert (first.key_id, second.key_id) == (1, 2)
        assert first.revoked_at is not None and second.revoked_at is None
        assert readiness.active_key(db, procedure).key_id == 2
        found = readiness.gateway_for_token(db, procedure, console_token)
        assert found is not None and found.role == "console"
        assert readiness.gateway_for_token(db, procedure, console_token + "x") is None
        trail = " ".join(e.detail for e in db.execute(select(AuditEvent)).scalars())
    keys = {role: load_keys(path) for role, path in paths.items()}
    assert keys["console"] == keys["robot"]
    assert keys["robot"].procedure_id == f"procedure-{planned.procedure_id}"
    for path in paths.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = json.loads(paths["robot"].read_text())["console_to_robot"]
    assert secret not in trail
    assert console_token not in trail


def test_start_is_refused_with_reasons_then_allowed(world, planned):
    sessions = world.runtime.sessions
    data_dir = world.runtime.settings.data_dir
    with transaction(sessions) as db:
        procedure = db.get(Procedure, planned.procedure_id)
        with pytest.raises(readiness.StartRefused) as refused:
            readiness.start(db, planned.surgeon, procedure, NOW, DAY)
        assert "no passing link qualification" in refused.value.reasons
        assert "the patient's consent for telesurgery is not recorded" in refused.value.reasons
    with transaction(sessions) as db:
        procedure = db.get(Procedure, planned.procedure_id)
        for role in ("console", "robot"):
            readiness.enrol_gateway(db, planned.engineer, procedure, role, "h:1", NOW)
        readiness.issue_keys(db, planned.engineer, procedure, data_dir / "k", NOW)
        patient = patients.get_patient(db, planned.patient_id)
        patients.record_consent(
            db, planned.surgeon, patient, "telesurgery", "granted", world.briey.id
        )
        failed = readiness.record_qualification(
            db, planned.engineer, procedure, report(go=False), data_dir, NOW
        )
        assert not failed.passed
        assert "NO-GO" in (data_dir / failed.html_path).read_text()
        assert readiness.may_start(readiness.start_facts(db, procedure), NOW, DAY) == [
            "no passing link qualification"
        ]
        readiness.record_qualification(
            db, planned.engineer, procedure, report(go=True), data_dir, NOW
        )
        late = NOW + DAY + timedelta(minutes=1)
        with pytest.raises(readiness.StartRefused, match="older than 24 h"):
            readiness.start(db, planned.surgeon, procedure, late, DAY)
        readiness.start(db, planned.surgeon, procedure, NOW + timedelta(hours=1), DAY)
        assert procedure.status == "started"
        outcomes = [
            e.outcome
            for e in db.execute(
                select(AuditEvent).where(AuditEvent.action == "procedure.start")
            ).scalars()
        ]
    assert outcomes == ["refused", "refused", "success"]


def live_sessions(world) -> LiveSessions:
    """The live service's sessions of a process without a media server."""
    rt = world.runtime
    return LiveSessions(
        live=LiveRuntime(),
        outputs=MediaOutputs(HlsBroadcasts(rt.settings.data_dir)),
        feeds=SourceFeeds(),
        archive=Archive(rt.settings.data_dir / "images", rt.sessions, rt.bus),
        database=rt.sessions,
        data_dir=rt.settings.data_dir,
        clock=rt.now,
    )


def test_the_video_goes_live_through_the_live_service_and_the_surgeon_may_watch(world, planned):
    # The robot site's staff open it (here its engineer); the surgeon is invited to watch.
    sessions = live_sessions(world)

    async def open_video() -> tuple[int, int]:
        db = world.runtime.sessions()
        try:
            procedure = await asyncio.to_thread(db.get, Procedure, planned.procedure_id)
            assert procedure is not None
            video = await procedure_video.open_video(db, planned.engineer, procedure, NOW, sessions)
            await asyncio.to_thread(db.commit)
            return video.id, procedure.surgeon_id
        finally:
            await asyncio.to_thread(db.close)

    video_id, surgeon_id = asyncio.run(open_video())
    with world.runtime.sessions() as db:
        procedure = db.get(Procedure, planned.procedure_id)
        assert procedure is not None and procedure.live_session_id == video_id
        video = procedure_video.video_session(db, procedure)
        assert video is not None and (video.kind, video.status) == ("supervision", "live")
        assert video.site_id == world.briey.id and video.janus_room_id is not None
        assert live.role_of(db, video, surgeon_id) == "viewer"
        started = db.execute(
            select(AuditEvent.outcome).where(AuditEvent.action == "live.start")
        ).scalars()
        assert list(started) == ["success"]


def test_an_ended_procedure_opens_no_video(world, planned):
    with transaction(world.runtime.sessions) as db:
        procedure = db.get(Procedure, planned.procedure_id)
        assert procedure is not None
        procedure.status = "ended"
        with pytest.raises(Conflict, match="has ended"):
            asyncio.run(
                procedure_video.open_video(
                    db, planned.surgeon, procedure, NOW, live_sessions(world)
                )
            )
        assert db.execute(select(LiveSession)).scalars().all() == []


def test_timeline_ingest_appends_and_audits(world, planned):
    with transaction(world.runtime.sessions) as db:
        procedure = db.get(Procedure, planned.procedure_id)
        events = [
            procedures.TimelineEvent(NOW, "transition", "ENGAGED", "local team confirmed"),
            procedures.TimelineEvent(NOW, "transition", "HOLD", "watchdog: no command"),
            procedures.TimelineEvent(NOW, "alarm", "", "forged datagram"),
        ]
        procedures.ingest(db, planned.engineer, procedure, "robot", events)
        assert procedures.current_state(db, procedure) == "HOLD"
        entries = procedures.timeline(db, procedure)
        assert [(e.kind, e.state) for e in entries][-3:] == [
            ("transition", "ENGAGED"),
            ("transition", "HOLD"),
            ("alarm", ""),
        ]
        audited = (
            db.execute(select(AuditEvent).where(AuditEvent.action.in_(["procedure.transition"])))
            .scalars()
            .all()
        )
        assert [json.loads(e.detail)["state"] for e in audited] == ["ENGAGED", "HOLD"]
        assert all(e.patient_id == planned.patient_id for e in audited)
        with pytest.raises(InvalidInput):
            procedures.ingest(db, planned.engineer, procedure, "elsewhere", events)
    with world.runtime.sessions() as db:
        assert audit.verify(db) == []


def test_timeline_events_are_validated():
    with pytest.raises(ValueError, match="safety state"):
        procedures.TimelineEvent(NOW, "transition", "FLYING")
    with pytest.raises(ValueError, match="kind"):
        procedures.TimelineEvent(NOW, "procedure")


def test_status_board_keeps_the_latest_sample_only():
    board = LinkStatusBoard()
    assert board.latest(1) == (0, {})
    board.update(1, "robot", {"state": "ENGAGED", "latency_ms": 76.0, "password": "x"})
    board.update(1, "robot", {"latency_ms": 80.0})
    version, sample = board.latest(1)
    assert version == 2
    robot_side = sample.pop("sides")["robot"]
    assert sample == {"state": "ENGAGED", "latency_ms": 80.0, "robot_seen": True}
    assert robot_side["latency_ms"] == 80.0 and "password" not in robot_side
