"""A small clinical world across two hospitals, for the pages that gather every service's
items (home, patient page, audit log): people of each role, two patients with a study each,
a share, two live sessions, a telesurgery procedure and an emergency access."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp

from concilium import imaging
from concilium.config import Settings
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.live import invitations as live_invitations
from concilium.live import lifecycle as live_lifecycle
from concilium.platform import accounts, audit, patients, sharing
from concilium.platform.accounts import RoleGrant
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.platform.runtime import Runtime
from concilium.platform.tables import Site, User
from concilium.telesurgery import procedures as ts_procedures

PASSWORD = "correct-horse-42"
KEYS: dict[str, str] = {}
"""The authenticator key of each person made, by user name."""
JUSTIFICATION = "cardiac arrest in the emergency room, history needed"


@dataclass
class Clinic:
    """The ids of what :func:`populate` made."""

    metz: int
    briey: int
    radiologist: int
    surgeon: int
    briey_doctor: int
    patient: int
    briey_patient: int
    metz_study: str
    briey_study: str
    session_today: int
    session_later: int
    procedure: int


def _user(rt: Runtime, db, username: str, name: str, *roles: tuple[int, str]) -> User:  # type: ignore[no-untyped-def]
    """A person with a password and an authenticator (every role here requires one)."""
    user = accounts.create_user(
        db,
        audit.SYSTEM,
        username=username,
        full_name=name,
        password=PASSWORD,
        roles=[RoleGrant(site, role) for site, role in roles],
    )
    KEYS[username] = pyotp.random_base32()
    user.totp_secret = rt.box.seal(KEYS[username], f"totp:{user.id}")
    return user


def _store(rt: Runtime, folder: Path, study: SyntheticStudy, user: User, site_id: int) -> str:
    (first,) = generate_ct_series(folder, 1, study=study, rows=16, columns=16)
    archive = imaging.Archive(rt.settings.data_dir / "images", rt.sessions, rt.bus)
    principal = Principal(user.id, user.username, {site_id: frozenset({"radiologist"})})
    sender = imaging.Sender(principal, audit.Actor(user.id, user.username), site_id)
    return imaging.ingest_instance(archive, sender, [first.read_bytes()]).study_instance_uid


def populate(rt: Runtime, metz: Site | None = None, briey: Site | None = None) -> Clinic:
    now = rt.now()
    with transaction(rt.sessions) as db:
        if metz is None or briey is None:
            metz = accounts.create_site(db, audit.SYSTEM, "CHR Metz-Thionville", "570005165")
            briey = accounts.create_site(db, audit.SYSTEM, "CH Briey", "540000049")
        metz_id, briey_id = metz.id, briey.id
        radiologist = _user(rt, db, "jdoe", "Dr Jeanne Doe", (metz_id, "radiologist"))
        surgeon = _user(rt, db, "pmartin", "Dr Pierre Martin", (metz_id, "specialist"))
        briey_doctor = _user(
            rt,
            db,
            "lbernard",
            "Dr Luc Bernard",
            (briey_id, "radiologist"),
            (briey_id, "specialist"),
        )
        metz_actor = audit.Actor(radiologist.id, radiologist.username)
        patient = patients.create_patient(
            db, metz_actor, metz_id, "MTZ-1", patients.Demographics("Durand", "Anne")
        )
        briey_actor = audit.Actor(briey_doctor.id, briey_doctor.username)
        briey_patient = patients.create_patient(
            db, briey_actor, briey_id, "BRY-7", patients.Demographics("Petit", "Paul")
        )
        patient_id, briey_patient_id = patient.id, briey_patient.id
    today = now.date()
    metz_study = _store(
        rt,
        rt.settings.data_dir / "ct-metz",
        SyntheticStudy(
            "home-metz",
            SyntheticPatient("DURAND^ANNE", "MTZ-1"),
            study_date=today,
            description="CT THORAX METZ",
        ),
        radiologist,
        metz_id,
    )
    briey_study = _store(
        rt,
        rt.settings.data_dir / "ct-briey",
        SyntheticStudy(
            "home-briey",
            SyntheticPatient("PETIT^PAUL", "BRY-7"),
            study_date=today - dt.timedelta(days=1),
            description="CT ABDOMEN BRIEY",
        ),
        briey_doctor,
        briey_id,
    )
    with transaction(rt.sessions) as db:
        metz_actor = audit.Actor(radiologist.id, radiologist.username)
        briey_actor = audit.Actor(briey_doctor.id, briey_doctor.username)
        sharing.create_share(
            db,
            briey_actor,
            resource_kind=imaging.STUDY_KIND,
            resource_id=briey_study,
            to_site_id=None,
            to_user_id=radiologist.id,
            expires_at=now + timedelta(days=3),
            now=now,
            reason="second opinion",
            patient_id=briey_patient_id,
        )
        surgeon_actor = audit.Actor(surgeon.id, surgeon.username)
        soon = live_lifecycle.create_session(
            db,
            surgeon_actor,
            kind="supervision",
            title="Cath lab supervision",
            site_id=metz_id,
            scheduled_at=now + timedelta(minutes=5),
            now=now,
            patient_id=patient_id,
        )
        later = live_lifecycle.create_session(
            db,
            surgeon_actor,
            kind="conference",
            title="Thoracic tumour board",
            site_id=metz_id,
            scheduled_at=now + timedelta(days=3),
            now=now,
        )
        for live in (soon, later):
            live_invitations.invite(
                db, surgeon_actor, live, user_id=radiologist.id, role="participant", now=now
            )
        procedure = ts_procedures.create_procedure(
            db,
            surgeon_actor,
            title="Remote prostatectomy",
            console_site_id=metz_id,
            robot_site_id=briey_id,
            surgeon_id=surgeon.id,
            robot_name="Arm-1",
            patient_id=patient_id,
            now=now,
        )
        sharing.break_the_glass(
            db,
            briey_actor,
            patient_id=patient_id,
            patient_site_ids=frozenset({metz_id}),
            justification=JUSTIFICATION,
            minutes=30,
            now=now,
        )
        return Clinic(
            metz=metz_id,
            briey=briey_id,
            radiologist=radiologist.id,
            surgeon=surgeon.id,
            briey_doctor=briey_doctor.id,
            patient=patient_id,
            briey_patient=briey_patient_id,
            metz_study=metz_study,
            briey_study=briey_study,
            session_today=soon.id,
            session_later=later.id,
            procedure=procedure.id,
        )


def populate_served(
    data_dir: Path, then: Callable[[Runtime, Clinic], Any] | None = None
) -> tuple[Clinic, Any]:
    """Populate the data of a server the tests started (in ``data_dir``), then run ``then``
    with the runtime and the clinic; the clinic and what ``then`` returned. From a thread of
    its own: Playwright keeps an event loop in the caller's, where the platform refuses to
    begin a write."""
    made: list[tuple[Clinic, Any]] = []

    def work() -> None:
        runtime = Runtime.start(Settings(data_dir=data_dir))
        try:
            clinic = populate(runtime)
            made.append((clinic, then(runtime, clinic) if then is not None else None))
        finally:
            runtime.close()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    if not made:
        raise RuntimeError("the clinic could not be populated (see the thread's error above)")
    return made[0]
