"""Demo data: two hospitals of the region, one user per role, a few patients with consent.

Passwords are derived from this installation's own secret key, so ``demo load`` can print
them again on every run without storing them, and no two installations share them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from concilium.platform import accounts, audit, patients
from concilium.platform.accounts import RoleGrant
from concilium.platform.errors import NotFound
from concilium.platform.tables import Site

SITES = (("CHR Metz-Thionville", "570005165"), ("CH Briey", "540000049"))

# username, full name, profession, specialty, role, site index, platform admin
PEOPLE = (
    ("admin", "Claire Martin", "IT manager", "", "admin", 0, True),
    ("radiologue", "Dr Paul Lefèvre", "Physician", "Radiology", "radiologist", 0, False),
    (
        "medecin",
        "Dr Sophie Bernard",
        "Physician",
        "General medicine",
        "referring_physician",
        0,
        False,
    ),
    (
        "cardiologue",
        "Dr Karim Haddad",
        "Physician",
        "Interventional cardiology",
        "specialist",
        0,
        False,
    ),
    ("coordinatrice", "Julie Moreau", "Nurse", "MDT coordination", "coordinator", 0, False),
    ("manipulateur", "Lucas Petit", "Radiographer", "", "technologist", 0, False),
    ("ingenieur", "Nadia Roux", "Biomedical engineer", "Networks", "engineer", 0, False),
    ("interne", "Hugo Garnier", "Resident", "Radiology", "learner", 0, False),
    ("admin-briey", "Marc Colin", "IT manager", "", "admin", 1, False),
    ("radiologue-briey", "Dr Emma Lambert", "Physician", "Radiology", "radiologist", 1, False),
)

# family, given, birth date, sex, identifier at Metz, identifier at Briey (or "")
PATIENTS = (
    ("DUPONT", "Jeanne", date(1948, 3, 14), "F", "MTZ-000123", "BRY-77001"),
    ("SCHMITT", "Bernard", date(1956, 11, 2), "M", "MTZ-000456", ""),
    ("KLEIN", "Amandine", date(1979, 6, 25), "F", "", "BRY-77042"),
)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    site: str
    created: bool


def demo_password(key: bytes, username: str) -> str:
    digest = hmac.new(key, f"demo-password:{username}".encode(), hashlib.sha256).digest()
    return "Demo-" + base64.b32encode(digest[:10]).decode().lower()


def load(session: Session, key: bytes) -> list[DemoAccount]:
    """Create what is missing; leave what exists alone. Returns every demo account."""
    actor = audit.Actor(None, "demo-loader")
    sites: list[Site] = []
    for name, finess in SITES:
        try:
            sites.append(accounts.site_by_finess(session, finess))
        except NotFound:
            sites.append(accounts.create_site(session, actor, name, finess))
    result = []
    users = {}
    for username, full_name, profession, specialty, role, site_index, is_admin in PEOPLE:
        password = demo_password(key, username)
        user = accounts.user_by_username(session, username)
        created = user is None
        if user is None:
            user = accounts.create_user(
                session,
                actor,
                username=username,
                full_name=full_name,
                password=password,
                roles=[RoleGrant(sites[site_index].id, role)],
                profession=profession,
                specialty=specialty,
                is_platform_admin=is_admin,
            )
        users[username] = user
        result.append(DemoAccount(username, password, role, sites[site_index].name, created))
    recorder = users["coordinatrice"]
    recorder_actor = audit.Actor(recorder.id, recorder.username, role="coordinator")
    for family, given, born, sex, metz_id, briey_id in PATIENTS:
        first_site, first_id = (sites[0], metz_id) if metz_id else (sites[1], briey_id)
        if patients.find_by_identifier(session, first_site.id, first_id) is not None:
            continue
        who = patients.Demographics(family, given, born, sex)
        patient = patients.create_patient(session, actor, first_site.id, first_id, who)
        if metz_id and briey_id:
            patients.add_identifier(session, actor, patient, sites[1].id, briey_id)
        if metz_id:
            patients.record_consent(
                session,
                recorder_actor,
                patient,
                "remote_reading",
                "granted",
                sites[0].id,
                "Non-opposition collected at admission",
            )
    return result
