"""Every route goes through the policy: enumerated here so a new route cannot forget it."""

from __future__ import annotations

import os
import re
from datetime import time, timedelta
from pathlib import Path

import pytest
from starlette.routing import Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from concilium.app import iter_routes
from concilium.config import ROLES
from concilium.live import lifecycle as live_lifecycle
from concilium.live.hls_files import HlsSigner
from concilium.live.playback_web import CAPABILITY_PATHS, hls_signer
from concilium.live.tables import LiveRecording
from concilium.platform import accounts, audit, notifications, patients, sharing
from concilium.platform.db import transaction
from concilium.platform.tables import AccountLink
from concilium.services import SERVICES
from concilium.telesurgery import procedures as ts_procedures
from concilium.telesurgery.tables import QualificationRecord as TsQualification
from concilium.web.context import SESSION_COOKIE

PUBLIC = frozenset().union(*(s.public_paths for s in SERVICES))
# Routes authenticated by a signed capability in the path, not by a session (HLS files, which
# a cache may serve): no gate, and each refuses an unsigned, forged or expired address.
CAPABILITY = CAPABILITY_PATHS


def routes(app):
    for route in iter_routes(app):
        for method in sorted(route.methods):
            yield method, route


def test_every_route_declares_a_policy_action(app):
    undeclared = []
    for method, route in routes(app):
        if route.path in PUBLIC or route.path in CAPABILITY:
            continue
        gated = [d for d in route.dependant.dependencies if hasattr(d.call, "action")]
        if len(gated) != 1:
            undeclared.append(f"{method} {route.path}")
    assert undeclared == []


def fill(path, ids):
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


def _metz_study(world, doctor):
    """A CT study stored by Metz (patient "SECRET"), and a STOW-RS body adding to it."""
    from concilium import imaging
    from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
    from concilium.platform.policy import Principal

    rt = world.runtime
    study = SyntheticStudy("route-authz", SyntheticPatient("SECRET^Name", "MTZ-1"))
    first, second = generate_ct_series(rt.settings.data_dir / "ct", 2, study=study, rows=16)
    archive = imaging.Archive(rt.settings.data_dir / "images", rt.sessions, rt.bus)
    principal = Principal(doctor.id, doctor.username, {world.metz.id: frozenset({"radiologist"})})
    sender = imaging.Sender(principal, audit.Actor(doctor.id, doctor.username), world.metz.id)
    stored = imaging.ingest_instance(archive, sender, [first.read_bytes()])
    part = b"--metz\r\nContent-Type: application/dicom\r\n\r\n" + second.read_bytes()
    return {
        "study": stored.study_instance_uid,
        "series": stored.series_instance_uid,
        "instance": stored.sop_instance_uid,
        "frames": "1",
        "stow_body": part + b"\r\n--metz--\r\n",
        "stow_type": 'multipart/related; type="application/dicom"; boundary=metz',
    }


@pytest.fixture
def metz_objects(world):
    """Objects belonging to Metz: a patient, a user with a token, a share, an alert."""
    rt = world.runtime
    nancy = None
    with transaction(rt.sessions) as db:
        nancy = accounts.create_site(db, audit.SYSTEM, "CHRU Nancy", "540023264")
    staff = world.user("metz-coord", (world.metz, "coordinator"))
    doctor = world.user("metz-radio", (world.metz, "radiologist"))
    surgeon = world.user("metz-surgeon", (world.metz, "specialist"))
    token = world.token(staff, "patients:read")
    study = _metz_study(world, doctor)
    with transaction(rt.sessions) as db:
        actor = audit.Actor(doctor.id, doctor.username)
        patient = patients.create_patient(
            db, actor, world.metz.id, "MTZ-1", patients.Demographics("SECRET", "Name")
        )
        share = sharing.create_share(
            db,
            actor,
            resource_kind="patient",
            resource_id=str(patient.id),
            to_site_id=nancy.id,
            to_user_id=None,
            expires_at=rt.now() + timedelta(days=3),
            now=rt.now(),
            from_site_id=world.metz.id,
        )
        sharing.break_the_glass(
            db,
            actor,
            patient_id=patient.id,
            patient_site_ids=frozenset({world.metz.id}),
            justification="cardiac arrest in the emergency room",
            minutes=30,
            now=rt.now(),
        )
        alert_id = sharing.open_alerts(db, None)[0].id
        notice = notifications.notify(db, staff.id, "test", "For the Metz coordinator", rt.now())
        live = live_lifecycle.create_session(
            db,
            actor,
            kind="supervision",
            title="Cath lab supervision",
            site_id=world.metz.id,
            scheduled_at=rt.now(),
            now=rt.now(),
            patient_id=patient.id,
        )
        live_lifecycle.start(db, actor, live, rt.now(), teaching_consent=False)
        recording = LiveRecording(
            session_id=live.id,
            feed=1,
            path="live/recordings/none.webm",
            media_type="video/webm",
            video_codec="vp8",
            started_at=rt.now(),
            duration=1.0,
            chapters=[],
        )
        db.add(recording)
        db.flush()
        # A procedure between Metz (console) and Nancy (robot): Briey owns no side of it.
        procedure = ts_procedures.create_procedure(
            db,
            actor,
            title="Remote prostatectomy",
            console_site_id=world.metz.id,
            robot_site_id=nancy.id,
            surgeon_id=surgeon.id,
            robot_name="Arm-1",
            patient_id=patient.id,
            now=rt.now(),
        )
        qualification = TsQualification(
            procedure_id=procedure.id,
            measured_at=rt.now(),
            passed=True,
            profile="direct",
            verdict={"go": True},
            html_path="telesurgery/none.html",
        )
        db.add(qualification)
        db.flush()

        from concilium.imaging import nodes

        nodes.add_remote_ae(
            db, actor, ae_title="METZ_CT", host="10.0.0.1", port=104, site_id=world.metz.id
        )
        from concilium.boards import registry as boards

        board = boards.create_board(
            db,
            actor,
            "rcp-metz",
            boards.BoardFields(
                name="RCP de Metz",
                board_type="haematology",
                site_id=world.metz.id,
                starts_on=rt.now().date(),
                weekday=4,
                at=time(14, 0),
                duration_minutes=120,
            ),
        )
        boards.set_member(db, actor, board, staff, frozenset({"haematology"}), "coordinator")
        from concilium.boards import case_files, case_store
        from concilium.boards.tables import BoardAttendance, BoardMeeting

        meeting = BoardMeeting(
            board_id=board.id,
            key="rcp-metz.2099-01-02",
            scheduled_day=rt.now().date(),
            starts_at=rt.now() + timedelta(days=1),
            ends_at=rt.now() + timedelta(days=1, hours=2),
            status="planned",
            moved_for="",
        )
        db.add(meeting)
        db.flush()
        presence = BoardAttendance(meeting_id=meeting.id, user_id=staff.id, joined_at=rt.now())
        db.add(presence)
        board_case = case_store.create_draft(
            db,
            actor,
            board,
            patient.id,
            doctor.id,
            case_store.CaseFields(question="Secret question"),
            rt.now(),
        )
        document = case_files.add_document(
            db, actor, board_case, "other", "secret.pdf", b"%PDF-1.4\n", rt.now()
        )
        from concilium.platform.mail import Mail
        from concilium.platform.outbox import enqueue
        from concilium.reading import senders
        from concilium.reading.tables import HL7Message

        his = senders.add_sender(
            db, actor, site_id=world.metz.id, application="HIS", facility="CHRMETZ"
        )
        hl7_message = HL7Message(
            direction="in",
            site_id=world.metz.id,
            sender_id=his.id,
            message_type="ADT^A01",
            control_id="M-1",
            ack_code="AA",
            raw=b"MSH|^~\\&|HIS|CHRMETZ|||||ADT^A01|M-1|P|2.5.1\rPID|1||MTZ-1||SECRET^Name\r",
            patient_id=patient.id,
        )
        db.add(hl7_message)
        db.flush()
        from concilium.reading.tables import OutboundMessage

        outbound = OutboundMessage(
            site_id=world.metz.id,
            destination_id=his.id,
            patient_id=patient.id,
            kind="report",
            message_type="ORU^R01^ORU_R01",
            control_id="O-1",
            raw=b"MSH|^~\\&|CONCILIUM|570005165|HIS|CHRMETZ|||ORU^R01|O-1|P|2.5.1\r",
            state="queued",
            attempts=0,
            last_error="",
            ack_code="",
        )
        db.add(outbound)
        db.flush()
        from concilium.reading import groups as reading_groups
        from concilium.reading.tables import ImagingOrderRecord, ReadingAssignment

        metz_reading = reading_groups.add_group(
            db, actor, name="Radiologie Metz", site_id=world.metz.id, local=True
        )
        reading_groups.add_member(db, actor, metz_reading, doctor.id)
        metz_order = ImagingOrderRecord(
            site_id=world.metz.id, patient_id=patient.id, accession_number="MTZ-ACC-1"
        )
        db.add(metz_order)
        db.flush()
        from concilium.reading.tables import ScheduledStepRecord

        metz_step = ScheduledStepRecord(
            order_id=metz_order.id, requested_procedure_id="RP-1", step_id="SPS-1", modality="CT"
        )
        db.add(metz_step)
        db.flush()
        exam = ReadingAssignment(
            order_id=metz_order.id, group_id=metz_reading.id, decided_for=rt.now()
        )
        db.add(exam)
        db.flush()
        from concilium.reading.tables import ReadingReport, ReadingReportVersion

        metz_report = ReadingReport(order_id=metz_order.id, status="final", sections=[])
        db.add(metz_report)
        db.flush()
        metz_version = ReadingReportVersion(
            report_id=metz_report.id,
            version=1,
            status="F",
            sections=[],
            signed_by_id=doctor.id,
            signed_at=rt.now(),
            digest="0" * 64,
            pdf=b"%PDF-1.4\n",
            sop_instance_uid="1.2.3",
        )
        db.add(metz_version)
        db.flush()
        from concilium.reading.tables import CriticalFindingNotice

        finding_notice = CriticalFindingNotice(
            version_id=metz_version.id,
            report_id=metz_report.id,
            level="critical",
            recipient_id=doctor.id,
            notified_at=rt.now(),
            channels=["in_app"],
            due_at=rt.now(),
            escalated_to=[],
        )
        db.add(finding_notice)
        db.flush()

        mail = enqueue(
            db,
            rt,
            Mail("account.notice", (f"{staff.username}@chr-metz.fr",), "Access", "Text."),
            site_id=world.metz.id,
        )
        return {
            "user_id": staff.id,
            "patient_id": patient.id,
            "token_id": token.split("_")[1],
            "share_id": share.id,
            "alert_id": alert_id,
            "notification_id": notice.id,
            "site_id": world.metz.id,
            "patient_name": "SECRET",
            "username": staff.username,
            "session_id": live.id,
            "recording_id": recording.id,
            "procedure_id": procedure.id,
            "qualification_id": qualification.id,
            "ae_title": "METZ_CT",
            "mail_id": mail.id,
            "board_id": board.id,
            "sender_id": his.id,
            "message_id": hl7_message.id,
            "outbound_id": outbound.id,
            "exam_id": exam.id,
            "order_id": metz_order.id,
            "item_id": metz_step.id,
            "report_id": metz_report.id,
            "notice_id": finding_notice.id,
            "version": 1,
            "case_id": board_case.id,
            "meeting_id": meeting.id,
            "row_id": presence.id,
            "document_id": document.id,
            **study,
        }


def test_anonymous_requests_are_refused_everywhere(app, client, world, metz_objects):
    for method, route in routes(app):
        if route.path in PUBLIC or route.path in CAPABILITY:
            continue
        response = client.request(method, fill(route.path, metz_objects))
        where = f"{method} {route.path}"
        if route.path.startswith("/fhir/"):
            assert response.status_code == 401, where
            assert response.headers["content-type"] == "application/fhir+json", where
            assert response.json()["resourceType"] == "OperationOutcome", where
        elif route.path.startswith(("/api/", "/dicomweb/", "/janus")) or route.path in (
            "/metrics",
            "/wado",
        ):
            assert response.status_code == 401, where
            assert response.headers["content-type"] == "application/problem+json", where
        else:
            assert response.status_code == 303, where
            assert response.headers["location"].startswith("/login"), where


def _wrong_site_client(app, world):
    """A Briey user holding every role there: the most a wrong-site user can have."""
    user = world.user("briey-all", *[(world.briey, r) for r in ROLES], with_totp=True)
    browser = world.client(app)
    csrf = world.sign_in(browser, user)
    browser.headers["x-csrf-token"] = csrf
    return browser


# Requests that act at Metz without naming a Metz object in the path.
ACTING_AT_METZ = {
    ("POST", "/api/v1/sites"): {"json": {"name": "X", "finess": "570000009"}},
    ("POST", "/api/v1/users"): {
        "json": {
            "username": "intruder",
            "full_name": "I",
            "roles": [{"site_id": "{site_id}", "role": "admin"}],
        }
    },
    ("POST", "/api/v1/tokens"): {
        "json": {"name": "x", "scopes": ["admin"], "user_id": "{user_id}"}
    },
    ("POST", "/api/v1/patients"): {
        "json": {
            "site_id": "{site_id}",
            "identifier": "MTZ-9",
            "family_name": "A",
            "given_name": "B",
        }
    },
    ("POST", "/admin/sites"): {"data": {"name": "X", "finess": "570000009"}},
    ("POST", "/admin/users"): {
        "data": {
            "username": "intruder",
            "full_name": "I",
            "site_id": "{site_id}",
            "role": "admin",
        }
    },
    ("POST", "/patients"): {
        "data": {
            "site_id": "{site_id}",
            "identifier": "MTZ-9",
            "family_name": "A",
            "given_name": "B",
        }
    },
    ("GET", "/admin/sites"): {},
    ("POST", "/admin/imaging/aes"): {
        "data": {"ae_title": "INTRUDER", "host": "h", "port": "104", "site_id": "{site_id}"}
    },
    ("GET", "/audit/export"): {},
    ("POST", "/admin/boards"): {
        "data": {
            "site_id": "{site_id}",
            "code": "intruding-board",
            "name": "Intruding board",
            "board_type": "other",
            "starts_on": "2099-01-01",
            "weekday": "4",
            "at": "14:00",
            "duration_minutes": "60",
            "timezone": "Europe/Paris",
            "on_holiday": "skip",
        }
    },
    ("POST", "/admin/reading/hl7"): {
        "data": {"application": "INTRUDER", "facility": "X", "site_id": "{site_id}"}
    },
    ("POST", "/api/v1/live/sessions"): {
        "json": {
            "kind": "broadcast",
            "title": "Intruding session",
            "site_id": "{site_id}",
            "scheduled_at": "2099-01-01T08:00:00Z",
        }
    },
    ("POST", "/live"): {
        "data": {
            "kind": "broadcast",
            "title": "Intruding session",
            "site_id": "{site_id}",
            "scheduled_at": "2099-01-01T08:00",
        }
    },
    ("POST", "/api/v1/telesurgery/procedures"): {
        "json": {
            "title": "Intruding procedure",
            "console_site_id": "{site_id}",
            "robot_site_id": "{site_id}",
            "surgeon_id": "{user_id}",
            "robot_name": "Arm",
            "patient_id": "{patient_id}",
        }
    },
    ("POST", "/telesurgery"): {
        "data": {
            "title": "Intruding procedure",
            "console_site_id": "{site_id}",
            "robot_site_id": "{site_id}",
            "surgeon": "metz-surgeon",
            "robot_name": "Arm",
            "patient": "MTZ-1",
        }
    },
    # The media proxy forwards only requests carrying the caller's own media credential.
    ("POST", "/janus"): {"json": {"janus": "create", "transaction": "x", "token": "guess"}},
    # STOW-RS of an instance of the Metz study; WADO-URI of a Metz instance.
    ("POST", "/dicomweb/studies"): {
        "content": "{stow_body}",
        "headers": {"content-type": "{stow_type}"},
    },
    ("GET", "/wado"): {
        "params": {
            "requestType": "WADO",
            "studyUID": "{study}",
            "seriesUID": "{series}",
            "objectUID": "{instance}",
            "contentType": "application/dicom",
        }
    },
}
# Placing an order or registering a patient at Metz over FHIR (the identifier system names
# the site).
_FHIR = {"headers": {"content-type": "application/fhir+json"}}
ACTING_AT_METZ[("POST", "/fhir/Patient")] = {
    **_FHIR,
    "json": {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:concilium:ipp:570005165", "value": "MTZ-9"}],
        "name": [{"family": "A", "given": ["B"]}],
    },
}
ACTING_AT_METZ[("POST", "/fhir/ServiceRequest")] = {
    **_FHIR,
    "json": {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "urn:concilium:accession:570005165", "value": "MTZ-ACC-9"}],
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"code": "CT-THX"}]},
        "orderDetail": [
            {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}]}
        ],
        "subject": {"reference": "Patient/{patient_id}"},
    },
}
ACTING_AT_METZ[("POST", "/api/v1/reading/worklist-items")] = {
    "json": {
        "site_id": "{site_id}",
        "patient_id": "{patient_id}",
        "accession_number": "MTZ-ACC-9",
        "modality": "CT",
        "scheduled_at": "2099-01-01T08:00:00Z",
        "procedure": {"code": "CT", "scheme": "99MTZ", "meaning": "Scanner"},
    }
}
# Bodies for object routes, so that the refusal comes from the policy and not validation.
BODIES = {
    ("POST", "/api/v1/boards/cases/{case_id}/decision"): {
        "json": {"proposal": "P", "guideline": "G", "code": "123456"}
    },
    ("POST", "/api/v1/boards/cases/{case_id}/addenda"): {
        "json": {"proposal": "P", "guideline": "G", "reason": "R", "code": "123456"}
    },
    ("PUT", "/api/v1/users/{user_id}/roles"): {"json": {"roles": []}},
    ("POST", "/api/v1/users/{user_id}/reset-link"): {"json": {"code": "123456"}},
    ("POST", "/admin/users/{user_id}/reset-link"): {"data": {"code": "123456"}},
    ("POST", "/telesurgery/{procedure_id}/gateways"): {
        "data": {"role": "robot", "public_name": "intruder:7000"}
    },
    ("POST", "/telesurgery/{procedure_id}/qualifications"): {
        "data": {"profile": "direct", "duration_s": "1"}
    },
    ("PUT", "/api/v1/patients/{patient_id}"): {"json": {"family_name": "X", "given_name": "Y"}},
    ("POST", "/api/v1/patients/{patient_id}/identifiers"): {"json": {"site_id": 2, "value": "B-1"}},
    ("POST", "/api/v1/patients/{patient_id}/merge"): {"json": {"duplicate_id": 999}},
    ("POST", "/api/v1/patients/{patient_id}/consents"): {
        "json": {"purpose": "teaching", "decision": "granted", "site_id": 2}
    },
    ("POST", "/api/v1/patients/{patient_id}/shares"): {
        "json": {"to_site_id": 2, "expires_at": "2099-01-01T00:00:00Z"}
    },
    ("POST", "/patients/{patient_id}/identifiers"): {"data": {"site_id": 2, "value": "B-1"}},
    ("POST", "/patients/{patient_id}/consents"): {
        "data": {"purpose": "teaching", "decision": "granted", "site_id": 2}
    },
    ("POST", "/patients/{patient_id}/shares"): {
        "data": {"to_site_id": 2, "expires_on": "2099-01-01"}
    },
    ("POST", "/patients/{patient_id}/merge"): {"data": {"duplicate_id": 999}},
    ("POST", "/live/{session_id}/invite"): {"data": {"username": "briey-all", "role": "director"}},
    ("POST", "/live/{session_id}/sources"): {"data": {"name": "OR", "kind": "camera"}},
    ("POST", "/api/v1/live/sessions/{session_id}/sources"): {
        "json": {"name": "OR", "kind": "camera"}
    },
    ("POST", "/live/{session_id}/cameras"): {
        "data": {"name": "PTZ", "host": "127.0.0.1", "port": 52381}
    },
    ("POST", "/api/v1/live/sessions/{session_id}/program"): {"json": {"feed": 1}},
    ("POST", "/api/v1/live/sessions/{session_id}/invitations"): {
        "json": {"user_id": "{user_id}", "role": "director"}
    },
    ("POST", "/api/v1/live/sessions/{session_id}/ptz"): {"json": {"camera_id": 1, "move": "up"}},
    ("POST", "/live/{session_id}/reschedule"): {"data": {"scheduled_at": "2099-01-01T10:00"}},
    ("POST", "/api/v1/live/sessions/{session_id}/reschedule"): {
        "json": {"scheduled_at": "2099-01-01T09:00:00Z"}
    },
    ("GET", "/janus/{tail:path}"): {"params": {"token": "guess"}},
    ("POST", "/janus/{tail:path}"): {"json": {"janus": "keepalive", "token": "guess"}},
    ("POST", "/api/v1/telesurgery/procedures/{procedure_id}/gateways"): {
        "json": {"role": "robot", "public_name": "203.0.113.7:18950"}
    },
    ("POST", "/telesurgery/{procedure_id}/video"): {"data": {"live_session_id": "{session_id}"}},
    ("POST", "/api/v1/telesurgery/procedures/{procedure_id}/timeline"): {
        "json": {"events": [{"at": "2099-01-01T00:00:00Z", "kind": "alarm", "detail": "x"}]},
        "headers": {"x-gateway-token": "tsg_guess"},
    },
    ("POST", "/dicomweb/studies/{study}"): {
        "content": "{stow_body}",
        "headers": {"content-type": "{stow_type}"},
    },
    ("POST", "/imaging/studies/{study}/shares"): {
        "data": {"to_site_id": 2, "expires_on": "2099-01-01"}
    },
    ("POST", "/imaging/studies/{study}/reject"): {"data": {"reason": "113001"}},
    ("PATCH", "/api/v1/reading/worklist-items/{item_id}"): {"json": {"modality": "MR"}},
    ("PUT", "/fhir/Patient/{patient_id}"): {
        **_FHIR,
        "json": {"resourceType": "Patient", "id": "1", "name": [{"family": "X"}]},
    },
    ("PUT", "/fhir/ServiceRequest/{order_id}"): {
        **_FHIR,
        "json": {
            "resourceType": "ServiceRequest",
            "status": "revoked",
            "intent": "order",
            "subject": {"reference": "Patient/{patient_id}"},
        },
    },
}
# Lists: allowed, but must show nothing of Metz.
LISTS = {
    "/api/v1/users",
    "/api/v1/tokens",
    "/api/v1/patients",
    "/api/v1/audit-events",
    "/api/v1/alerts",
    "/admin/users",
    "/tokens",
    "/patients",
    "/audit",
    "/",
    "/live",
    "/live/library",
    "/api/v1/live/sessions",
    "/telesurgery",
    "/api/v1/telesurgery/procedures",
    # QIDO-RS: another site's studies are simply not among the results.
    "/dicomweb/studies",
    "/dicomweb/series",
    "/dicomweb/instances",
    "/dicomweb/studies/{study}/series",
    "/dicomweb/studies/{study}/instances",
    "/dicomweb/studies/{study}/series/{series}/instances",
    # The archive's pages: another site's studies and DICOM nodes are not listed.
    "/imaging",
    "/admin/imaging/aes",
    "/admin/outbox",
    # Boards: those organised elsewhere are not listed, nor those one is no member of.
    "/admin/boards",
    "/boards",
    # The HL7 senders and messages of the caller's own hospitals only.
    "/admin/reading/hl7",
    "/admin/reading/hl7/messages",
    "/admin/reading/hl7/outbound",
    # The reading worklist: exams routed to the caller's reading groups only.
    "/reading",
    "/api/v1/reading/worklist",
    # The worklist items of the caller's own hospitals only.
    "/api/v1/reading/worklist-items",
    # FHIR DiagnosticReport search: the reports the caller may read only.
    "/fhir/DiagnosticReport",
}
# Routes that do not touch another site's objects: the caller's own account and session,
# the directory of sites, metrics, the API description; and break-the-glass, which is the
# one deliberate, audited way across sites (tested on its own).
NOT_SITE_SCOPED = {
    "/api/v1/me",
    "/api/v1/sites",
    # The regional directory of people (names, hospitals, specialties; nothing of patients):
    # one finds colleagues of the other hospitals to share with or invite them.
    "/api/v1/people",
    "/metrics",
    "/account",
    "/account/password",
    "/account/second-factor",
    "/logout",
    "/login/totp",
    "/api/openapi.json",
    "/fhir/metadata",  # what the FHIR server serves, the same for everyone
    "/api/v1/emergency-access",
    "/emergency",
    "/tokens",  # POST issues a token for the caller only
    # The caller's own calendar feed address (made or revoked for themselves only).
    "/boards/calendar",
    "/boards/calendar/revoke",
    "/live/assets/hls.min.js",  # the HLS player library, the same for everyone
    # The OHIF viewer's own files hold no patient data: what it shows comes through DICOMweb.
    "/ohif",
    "/ohif/{path:path}",
}


def _resolve(spec, ids):
    if isinstance(spec, dict):
        return {k: _resolve(v, ids) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_resolve(v, ids) for v in spec]
    if isinstance(spec, str) and re.fullmatch(r"\{\w+\}", spec):
        return ids[spec[1:-1]]
    return spec


def test_wrong_site_is_refused_on_every_route(app, world, metz_objects):
    browser = _wrong_site_client(app, world)
    ids = metz_objects
    unchecked = []
    # Lists first: later refused attempts are the caller's own audit entries, which name the
    # objects they were refused.
    ordered = sorted(routes(app), key=lambda mr: not (mr[1].path in LISTS and mr[0] == "GET"))
    for method, route in ordered:
        key = (method, route.path)
        if (
            route.path in PUBLIC
            or route.path in CAPABILITY
            or (route.path in NOT_SITE_SCOPED and key[0] != "GET")
            or (route.path in NOT_SITE_SCOPED and route.path not in LISTS)
        ):
            continue
        url = fill(route.path, ids)
        where = f"{method} {route.path}"
        if route.path in LISTS and method == "GET":
            response = browser.get(url)
            assert response.status_code == 200, where
            assert ids["patient_name"] not in response.text, where
            assert ids["username"] not in response.text, where
            assert ids["token_id"] not in response.text, where
            assert (
                "cardiac" not in response.text
                and "emergency access to patient" not in response.text
            ), where
            continue
        if "{" in route.path or key in ACTING_AT_METZ:
            kwargs = _resolve(BODIES.get(key) or ACTING_AT_METZ.get(key, {}), ids)
            response = browser.request(method, url, **kwargs)
            assert response.status_code in (403, 404), f"{where}: {response.status_code}"
            continue
        unchecked.append(where)
    assert unchecked == [], "routes the wrong-site test does not know how to exercise"
    # Nothing was changed by the refused requests.
    with world.runtime.sessions() as db:
        from concilium.platform.tables import Patient, User

        patient = db.get(Patient, ids["patient_id"])
        user = db.get(User, ids["user_id"])
        assert patient.family_name == "SECRET" and len(patient.identifiers) == 1
        assert not user.disabled
        assert accounts.user_by_username(db, "intruder") is None
        from concilium.boards import registry as boards

        board = boards.get_board(db, ids["board_id"])
        assert [b.code for b in boards.list_boards(db)] == ["rcp-metz"]
        assert [m.user_id for m in boards.members_of(db, board)] == [ids["user_id"]]
        assert db.execute(audit.select(AccountLink)).first() is None
        refusals = (
            db.execute(audit.select(audit.AuditEvent).where(audit.AuditEvent.outcome == "refused"))
            .scalars()
            .all()
        )
    assert len(refusals) >= 20  # every refusal is in the audit trail


def test_every_state_changing_route_needs_the_csrf_token(app, world, metz_objects):
    """A signed-in browser whose request lacks the CSRF token changes nothing, anywhere."""
    admin = world.user("metz-admin", (world.metz, "admin"), platform_admin=True, with_totp=True)
    browser = world.client(app)
    world.sign_in(browser, admin)
    for method, route in routes(app):
        if method == "GET" or route.path in PUBLIC:
            continue
        response = browser.request(method, fill(route.path, metz_objects), data={"x": "1"})
        assert response.status_code == 403, f"{method} {route.path}"
        assert "Form expired" in response.text, f"{method} {route.path}"


def test_capability_routes_refuse_unsigned_forged_and_expired_addresses(app, world, metz_objects):
    """Without a session: only a valid, unexpired signature for this very session opens."""
    from concilium.live.hls_files import hls_root

    session_id = metz_objects["session_id"]
    out = hls_root(world.runtime.settings.data_dir) / str(session_id)
    out.mkdir(parents=True)
    (out / "master.m3u8").write_text("#EXTM3U\n")
    now = world.runtime.now().timestamp()
    signer = hls_signer(app)
    valid = signer.grant(session_id, now)
    expired = signer.grant(session_id, now - 5 * 3600)
    other_installation = HlsSigner(b"another installation key")
    addresses = {
        "unsigned": (valid.expires, "unsigned"),
        "forged": (valid.expires, other_installation.grant(session_id, now).signature),
        "expired": (expired.expires, expired.signature),
        "another session": (valid.expires, signer.grant(session_id + 1, now).signature),
        "extended": (valid.expires + 3600, valid.signature),
    }
    anonymous = world.client(app)
    capability_routes = [(m, r) for m, r in routes(app) if r.path in CAPABILITY]
    assert {r.path for _, r in capability_routes} == CAPABILITY

    def url(path, expires, signature):
        ids = {**metz_objects, "expires": expires, "signature": signature, "name": "master.m3u8"}
        return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(ids[m.group(1)]), path)

    for method, route in capability_routes:
        for case, (expires, signature) in addresses.items():
            response = anonymous.request(method, url(route.path, expires, signature))
            where = f"{method} {route.path} ({case})"
            assert response.status_code == 403, where
            assert response.headers["content-type"] == "application/problem+json", where
        assert (
            anonymous.request(method, url(route.path, valid.expires, valid.signature)).status_code
            == 200
        )


# --- websockets, the media proxy, static files ------------------------------------------------


def every_route(routes):
    """Routes, those of included routers too, however deep."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from every_route(included.routes) if included is not None else (route,)


def websocket_routes(app):
    """Every websocket route of the application."""
    return [r for r in every_route(app.routes) if isinstance(r, WebSocketRoute)]


def test_every_websocket_refuses_anonymous_forged_and_wrong_site_connections(
    app, client, world, metz_objects
):
    found = websocket_routes(app)
    assert {r.path for r in found} >= {"/live/{session_id}/ws"}  # and any new one alike
    wrong_site = _wrong_site_client(app, world)
    cookie = wrong_site.cookies.get(SESSION_COOKIE)
    attempts = {
        "anonymous": {},
        "forged cookie": {"cookie": f"{SESSION_COOKIE}=forged-session-id"},
        "wrong site": {"cookie": f"{SESSION_COOKIE}={cookie}"},
    }
    for route in found:
        url = fill(route.path, metz_objects)
        for case, headers in attempts.items():
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                client.websocket_connect(url, headers=headers) as socket,
            ):
                socket.receive_json()  # nothing of the session reaches a refused peer
            assert refused.value.code == 1008, f"{route.path} ({case})"
    with world.runtime.sessions() as db:
        refusals = (
            db.execute(
                audit.select(audit.AuditEvent.actor).where(
                    audit.AuditEvent.action == "live.read",
                    audit.AuditEvent.outcome == "refused",
                )
            )
            .scalars()
            .all()
        )
    assert sorted(refusals) == ["", "", "briey-all"]


def test_the_janus_proxy_forwards_nothing_for_an_anonymous_caller(app, client, world, tmp_path):
    """Even carrying a valid media credential (of someone else), no session, no media."""
    import httpx

    from concilium.live.janus_config import JanusConfig
    from concilium.live.media import LiveMedia
    from concilium.live.web import live_runtime

    forwarded = []
    runtime = live_runtime(app)
    runtime.media = LiveMedia(
        JanusConfig(tmp_path / "janus"), httpx.AsyncClient(), clock=lambda: 1000.0
    )
    runtime.api_url = "http://janus.invalid/janus"
    runtime.http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: forwarded.append(r) or httpx.Response(200))
    )
    try:
        stolen = runtime.media.book.mint("1", live_lifecycle.ROOM_ID_BASE + 1, 1000.0, 600).token
        for method, url, kwargs in (
            ("POST", "/janus", {"json": {"janus": "create", "transaction": "x", "token": stolen}}),
            ("POST", "/janus/1/2", {"json": {"janus": "keepalive", "token": stolen}}),
            ("GET", "/janus/1", {"params": {"token": stolen, "maxev": "1"}}),
        ):
            response = client.request(method, url, **kwargs)
            assert response.status_code == 401, url
            assert response.headers["content-type"] == "application/problem+json", url
    finally:
        runtime.media, runtime.http = None, None
    assert forwarded == []


SERVED_KINDS = frozenset({".css", ".js", ".svg", ".png", ".ico", ".woff2", ".map"})
"""What a static folder holds: style sheets, scripts, images and fonts; no template, no
source, no catalogue, no data."""


def static_mounts(app):
    """(path, folder) of every static mount."""
    return [
        (route.path, Path(route.app.directory))
        for route in every_route(app.routes)
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles)
    ]


def test_static_mounts_hold_only_assets(app):
    mounts = static_mounts(app)
    assert {path for path, _ in mounts} >= {"/static", "/static/live", "/static/imaging"}
    for path, folder in mounts:
        for file in folder.rglob("*"):
            if file.is_file():
                assert file.suffix in SERVED_KINDS, f"{path}: {file.relative_to(folder)}"


def test_static_mounts_serve_nothing_outside_their_folder(app, client, world):
    import concilium

    package = Path(concilium.__file__).parent
    key = world.runtime.settings.data_dir / "secret.key"
    assert key.exists()
    targets = {
        "source": (package / "config.py", "CONCILIUM_"),
        "template": (package / "live" / "templates" / "session.html", "{%"),
        "key": (key, key.read_text().strip()[:16]),
        "system": (Path("/etc/passwd"), "root:"),
    }
    for mount, folder in static_mounts(app):
        for name, (target, marker) in targets.items():
            relative = os.path.relpath(target, folder)
            ups = relative.split("/")
            attempts = [
                "/".join("%2e%2e" if p == ".." else p for p in ups),
                "%2e%2e%2f".join([""] * (ups.count("..") + 1))
                + "/".join(p for p in ups if p != ".."),
                "/".join("..%2f" if p == ".." else p for p in ups).replace("%2f/", "%2f"),
                "/".join("%252e%252e" if p == ".." else p for p in ups),
                "..%5c" * ups.count("..") + "/".join(p for p in ups if p != ".."),
                str(target),
                "%2f" + str(target).lstrip("/"),
            ]
            for attempt in attempts:
                response = client.get(f"{mount}/{attempt}")
                where = f"{mount}/{attempt} ({name})"
                assert response.status_code in (400, 404), where
                assert marker not in response.text, where
        # What the folder does hold is served, as it is.
        asset = next(f for f in folder.rglob("*") if f.is_file())
        served = client.get(f"{mount}/{asset.relative_to(folder).as_posix()}")
        assert served.status_code == 200 and served.content == asset.read_bytes()
