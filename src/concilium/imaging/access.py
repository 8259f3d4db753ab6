"""What the policy is told about studies, and what becomes of its refusals.

Access is decided only by `concilium.platform.policy.decide`; this module gathers the facts it
needs about a study (its site, its platform patient, the active shares of either, from
`concilium.platform.sharing`) and keeps its refusals in the audit trail. The protocols answer
a refusal as PS3.7 C.4 status 0124 "Refused: Not Authorized" or HTTP 403. `readable` turns
what a principal may read into one SQL condition, so that a search asks the policy once per
request rather than once per study.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, or_, true, tuple_
from sqlalchemy.orm import Session

from concilium.imaging.actions import ImagingAction
from concilium.imaging.archive import Archive, study_by_uid
from concilium.imaging.nodes import DEVICE_USER_ID
from concilium.imaging.parsing import FailureReason, InvalidInstance
from concilium.imaging.tables import ImagingStudy
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import (
    Action,
    Decision,
    Principal,
    Target,
    decide,
    has_scope,
    visible_sites,
)
from concilium.platform.sharing import active_share_targets, shared_with_origin

__all__ = [
    "PATIENT_KIND",
    "STUDY_KIND",
    "NotAuthorized",
    "Readable",
    "authorised_study",
    "may_read_any",
    "new_study_target",
    "readable",
    "refuse",
    "study_target",
    "target_of",
]

STUDY_KIND = "study"
"""``resource_kind`` of study shares in `concilium.platform.sharing`."""
PATIENT_KIND = "patient"
"""``resource_kind`` of patient shares, whose ``resource_id`` is the patient's id."""


class NotAuthorized(InvalidInstance):
    """The policy refused the request (PS3.7 C.4 status 0124 "Refused: Not Authorized")."""

    reason = FailureReason.NOT_AUTHORIZED


def may_read_any(principal: Principal) -> bool:
    """Whether ``principal`` holds any way to read studies (else queries are refused)."""
    rule = ImagingAction.STUDY_READ.rule
    return has_scope(principal, rule) and (
        bool(principal.roles) or bool(principal.emergency_patient_ids)
    )


def study_target(session: Session, study: ImagingStudy, now: dt.datetime) -> Target:
    """Facts the policy needs about a study: its site, its patient and active shares.

    A share of the study counts, and a share of its patient coming from the study's own
    site: sharing a patient's record for a reading or a meeting shares the images the
    sharing site holds of them, never another site's (knowing a patient is no right to
    what other hospitals hold of them).
    """
    return target_of(session, study.study_instance_uid, study.site_id, study.patient_id, now)


def target_of(
    session: Session, study_uid: str, site_id: int, patient_id: int | None, now: dt.datetime
) -> Target:
    """`study_target` of a study known by its index columns rather than its row."""
    sites, users = active_share_targets(session, STUDY_KIND, study_uid, now)
    if patient_id is not None:
        p_sites, p_users = active_share_targets(
            session, PATIENT_KIND, str(patient_id), now, from_site_id=site_id
        )
        sites, users = sites | p_sites, users | p_users
    return Target(
        kind=STUDY_KIND,
        id=study_uid,
        site_ids=frozenset({site_id}),
        patient_id=patient_id,
        shared_site_ids=sites,
        shared_user_ids=users,
    )


def new_study_target(site_id: int, study_uid: str) -> Target:
    """The facts of a study not indexed yet: the site its first instance would give it."""
    return Target(kind=STUDY_KIND, id=study_uid, site_ids=frozenset({site_id}))


def refuse(
    archive: Archive, actor: audit.Actor, action: Action, target: Target, decision: Decision
) -> NotAuthorized:
    """Keep the policy's refusal in the audit trail; returns the error to raise."""
    # The refusal is kept even though the work is not: its own transaction.
    with transaction(archive.sessions) as session:
        audit.record_refusal(session, actor, str(action), target, decision.reason)
    return NotAuthorized(decision.reason)


def authorised_study(
    archive: Archive,
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    study_uid: str,
    action: Action,
    now: dt.datetime,
) -> tuple[ImagingStudy, Target]:
    """The study, once the policy allows ``action`` on it; a refusal is audited and raised."""
    study = study_by_uid(session, study_uid)
    if study is None:
        raise NotFound(_("study %(study_uid)s not found") % {"study_uid": study_uid})
    target = study_target(session, study, now)
    decision = decide(principal, action, target)
    if not decision.allowed:
        session.rollback()
        raise refuse(archive, actor, action, target, decision)
    return study, target


@dataclass(frozen=True)
class Readable:
    """The studies a principal may read, as the facts an SQL condition tests.

    `decide` grants ``study.read`` on any one fact of a study alone: a role at its site, an
    active share of the study, or of its patient from the study's site, to the principal or
    to one of their sites, a break-the-glass grant on its patient. Asking the policy once
    about each such fact the principal holds therefore selects exactly the studies it would
    grant one by one, without asking it again per study (``tests/imaging/test_access.py``
    holds it to that).
    """

    every_site: bool
    """The policy grants the studies of every site (``visible_sites`` said so)."""
    sites: frozenset[int]
    """Sites whose studies are granted by a role there."""
    shared_studies: frozenset[str]
    """Study Instance UIDs whose active shares to the principal grant them."""
    patients: frozenset[int]
    """Platform patients whose studies are granted by a break-the-glass grant."""
    patient_sites: frozenset[tuple[int, int]] = frozenset()
    """(patient, site): the studies of a patient held by a site, granted by an active share
    of the patient coming from that site."""

    def condition(self) -> ColumnElement[bool]:
        """SQL condition on `ImagingStudy` rows, with the bound values of `parameters`."""
        return true() if self.every_site else _VISIBLE

    def parameters(self) -> dict[str, Any]:
        return {
            "visible_sites": sorted(self.sites),
            "visible_studies": sorted(self.shared_studies),
            "visible_patients": sorted(self.patients),
            "visible_patient_sites": sorted(self.patient_sites),
        }


_VISIBLE = or_(
    ImagingStudy.site_id.in_(bindparam("visible_sites", expanding=True)),
    ImagingStudy.study_instance_uid.in_(bindparam("visible_studies", expanding=True)),
    ImagingStudy.patient_id.in_(bindparam("visible_patients", expanding=True)),
    tuple_(ImagingStudy.patient_id, ImagingStudy.site_id).in_(
        bindparam("visible_patient_sites", expanding=True)
    ),
)
"""Built once: the facts differ from one request to the next, never the statement."""


def _patient_sites(shares: Iterable[tuple[str, int | None]]) -> frozenset[tuple[int, int]]:
    # A patient share names the platform patient by its id, written as a plain number; one
    # coming from no site grants no site's studies.
    return frozenset(
        (int(i), site)
        for i, site in shares
        if site is not None and i.isdecimal() and str(int(i)) == i
    )


def readable(session: Session, principal: Principal, now: dt.datetime) -> Readable:
    """What ``principal`` may read, decided by the policy once per request."""
    if not may_read_any(principal):
        return Readable(False, frozenset(), frozenset(), frozenset())
    action = ImagingAction.STUDY_READ

    def grants(**facts: Any) -> bool:
        return decide(principal, action, Target(kind=STUDY_KIND, **facts)).allowed

    if visible_sites(principal, action) is None:
        return Readable(True, frozenset(), frozenset(), frozenset())
    own = frozenset(principal.roles)
    me = principal.user_id
    shared = shared_with_origin(
        session,
        (STUDY_KIND, PATIENT_KIND),
        user_id=me if me != DEVICE_USER_ID and grants(shared_user_ids=frozenset({me})) else None,
        site_ids=frozenset(s for s in own if grants(shared_site_ids=frozenset({s}))),
        now=now,
    )
    return Readable(
        every_site=False,
        sites=frozenset(s for s in own if grants(site_ids=frozenset({s}))),
        shared_studies=frozenset(study for study, _ in shared[STUDY_KIND]),
        patients=frozenset(p for p in principal.emergency_patient_ids if grants(patient_id=p)),
        patient_sites=_patient_sites(shared[PATIENT_KIND]),
    )
