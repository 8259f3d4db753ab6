"""The audit trail: append-only, hash-chained, exportable as FHIR AuditEvent and syslog.

Each entry's hash covers its content and the previous entry's hash, so altering or deleting
any entry breaks the chain from that point on (``verify``). The database also refuses
UPDATE, DELETE and TRUNCATE on the table and any rewinding of its head (triggers created by
the migrations). Signed checkpoints of the head kept outside the database
(``audit_checkpoints``) show a tail cut by someone able to bypass those triggers.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from concilium.platform.audit_checkpoints import Checkpoint, Problem, Reading
from concilium.platform.db import utcnow
from concilium.platform.i18n import N_
from concilium.platform.policy import Target
from concilium.platform.tables import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64

OUTCOMES = ("success", "failure", "refused", "emergency-override")


@dataclass(frozen=True)
class Actor:
    """Who did it, from where."""

    user_id: int | None
    username: str
    role: str = ""
    site_id: int | None = None
    ip: str = ""


SYSTEM = Actor(user_id=None, username="system")


def _canonical(event: AuditEvent) -> bytes:
    fields = {
        "seq": event.seq,
        "at": event.at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor": event.actor,
        "role": event.role,
        "site_id": event.site_id,
        "patient_id": event.patient_id,
        "action": event.action,
        "object_kind": event.object_kind,
        "object_id": event.object_id,
        "outcome": event.outcome,
        "ip": event.ip,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


def record(
    session: Session,
    actor: Actor,
    action: str,
    outcome: str,
    *,
    object_kind: str = "",
    object_id: str | int = "",
    patient_id: int | None = None,
    site_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one entry in the caller's transaction (it lands only if the work lands)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    # UPDATE first: it takes the row lock, so concurrent writers queue here on every backend.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one()
    event = AuditEvent(
        seq=head.seq,
        at=utcnow(),
        actor_id=actor.user_id,
        actor=actor.username,
        role=actor.role,
        site_id=site_id if site_id is not None else actor.site_id,
        patient_id=patient_id,
        action=action,
        object_kind=object_kind,
        object_id=str(object_id),
        outcome=outcome,
        ip=actor.ip,
        detail=json.dumps(detail or {}, sort_keys=True),
        prev_hash=head.last_hash,
    )
    event.hash = chain_hash(event)
    session.add(event)
    head.last_hash = event.hash
    session.flush()
    return event


@dataclass(frozen=True)
class Entry:
    """One entry of :func:`record_many`: what :func:`record` takes besides the actor."""

    action: str
    outcome: str
    object_kind: str = ""
    object_id: str | int = ""
    patient_id: int | None = None
    site_id: int | None = None
    detail: dict[str, Any] | None = None


def record_many(session: Session, actor: Actor, entries: Sequence[Entry]) -> list[AuditEvent]:
    """Append ``entries`` in the caller's transaction, chained as :func:`record` would chain
    them one by one, with one update of the head and one flush: a page showing a thousand
    cases writes its thousand views in one round."""
    for entry in entries:
        if entry.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {entry.outcome!r}")
    if not entries:
        return []
    session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + len(entries))
    )
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one()
    at = utcnow()
    previous = head.last_hash
    events = []
    for offset, entry in enumerate(entries):
        event = AuditEvent(
            seq=head.seq - len(entries) + 1 + offset,
            at=at,
            actor_id=actor.user_id,
            actor=actor.username,
            role=actor.role,
            site_id=entry.site_id if entry.site_id is not None else actor.site_id,
            patient_id=entry.patient_id,
            action=entry.action,
            object_kind=entry.object_kind,
            object_id=str(entry.object_id),
            outcome=entry.outcome,
            ip=actor.ip,
            detail=json.dumps(entry.detail or {}, sort_keys=True),
            prev_hash=previous,
        )
        event.hash = chain_hash(event)
        previous = event.hash
        events.append(event)
    session.add_all(events)
    head.last_hash = previous
    session.flush()
    return events


def record_refusal(
    session: Session, actor: Actor, action: str, target: Target, reason: str
) -> AuditEvent:
    """Append the policy's refusal of ``action`` on ``target``, with the policy's reason."""
    return record(
        session,
        actor,
        action,
        "refused",
        object_kind=target.kind if target.kind != "none" else "",
        object_id=target.id,
        patient_id=target.patient_id,
        detail={"reason": reason},
    )


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    """The entry concerned (0 for an unreadable checkpoint)."""
    problem: Problem
    """In English; ``problem.said()`` in the reader's language."""
    checkpoint: str = ""
    """The checkpoint that shows the problem (``file:line``); empty for the chain itself."""


def _checkpoint_breaks(
    readings: Iterable[Reading],
) -> tuple[list[ChainBreak], dict[int, dict[str, tuple[str, Checkpoint]]]]:
    """Untrustworthy checkpoints, and the others by sequence number then hash (the same head
    checkpointed many times is checked once)."""
    breaks: list[ChainBreak] = []
    anchors: dict[int, dict[str, tuple[str, Checkpoint]]] = {}
    for reading in readings:
        if reading.checkpoint is None or reading.problem:
            seq = reading.checkpoint.seq if reading.checkpoint is not None else 0
            breaks.append(ChainBreak(seq, reading.problem, reading.where))
            continue
        by_hash = anchors.setdefault(reading.checkpoint.seq, {})
        by_hash.setdefault(reading.checkpoint.hash, (reading.where, reading.checkpoint))
    return breaks, anchors


MISSING = N_("entries %(first)s..%(last)s missing")


def _when(checkpoint: Checkpoint) -> str:
    return checkpoint.at.isoformat(timespec="seconds")


def verify(
    session: Session, checkpoints: Iterable[Reading] = (), batch: int = 5000
) -> list[ChainBreak]:
    """Walk the whole chain; report every altered, deleted or reordered entry.

    Each of ``checkpoints`` (see ``audit_checkpoints.CheckpointLog.read``) is checked
    against the chain: an altered checkpoint, one naming an entry the chain no longer has
    (its tail was cut), or a different hash at its sequence number (rewritten) is reported.
    """
    breaks, anchors = _checkpoint_breaks(checkpoints)
    expected_prev = GENESIS_HASH
    expected_seq = 1
    last_seq = 0
    for digest, (where, _) in anchors.pop(0, {}).items():
        if digest != GENESIS_HASH:
            empty = Problem(N_("attests an empty chain with a hash"))
            breaks.append(ChainBreak(0, empty, where))
    while True:
        rows = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.seq > last_seq)
                .order_by(AuditEvent.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                missing = Problem(MISSING, first=expected_seq, last=event.seq - 1)
                breaks.append(ChainBreak(expected_seq, missing))
            if event.prev_hash != expected_prev:
                breaks.append(ChainBreak(event.seq, Problem(N_("previous-hash link broken"))))
            if chain_hash(event) != event.hash:
                breaks.append(ChainBreak(event.seq, Problem(N_("content altered"))))
            for digest, (where, checkpoint) in anchors.pop(event.seq, {}).items():
                if digest != event.hash:
                    problem = Problem(
                        N_(
                            "attests entry %(seq)s with another hash (taken %(at)s): "
                            "the chain was rewritten"
                        ),
                        seq=event.seq,
                        at=_when(checkpoint),
                    )
                    breaks.append(ChainBreak(event.seq, problem, where))
            expected_prev = event.hash
            expected_seq = event.seq + 1
            last_seq = event.seq
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    if head.seq != last_seq:
        missing = Problem(MISSING, first=last_seq + 1, last=head.seq)
        breaks.append(ChainBreak(last_seq + 1, missing))
    elif head.last_hash != expected_prev:
        tip = Problem(N_("chain tip does not match the last entry"))
        breaks.append(ChainBreak(last_seq, tip))
    for seq in sorted(anchors):
        for where, checkpoint in anchors[seq].values():
            if seq > last_seq:
                problem = Problem(
                    N_(
                        "attests entry %(seq)s (taken %(at)s), but the chain ends at "
                        "entry %(last)s: entries cut"
                    ),
                    seq=seq,
                    at=_when(checkpoint),
                    last=last_seq,
                )
            else:
                problem = Problem(
                    N_("attests entry %(seq)s (taken %(at)s), which is missing"),
                    seq=seq,
                    at=_when(checkpoint),
                )
            breaks.append(ChainBreak(seq, problem, where))
    return breaks


def chain_length(session: Session) -> int:
    return session.execute(select(AuditHead.seq).where(AuditHead.id == 1)).scalar_one()


def iter_events(session: Session, since: datetime | None = None) -> Iterator[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    yield from session.execute(query.execution_options(yield_per=1000)).scalars()


# --- FHIR AuditEvent, shaped as IHE Basic Audit Log Patterns (BALP) -----------------------

_REST_ACTION = {"create": "C", "read": "R", "query": "E", "update": "U", "delete": "D"}


def _fhir_action(action: str) -> str:
    verb = action.rsplit(".", 1)[-1]
    for key, code in _REST_ACTION.items():
        if verb.startswith(key):
            return code
    if verb in {"list", "search", "export"}:
        return "E"
    return "E"


def _balp_type(action: str) -> dict[str, str]:
    if action.startswith(("auth.", "session.")):
        return {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110114",
            "display": "User Authentication",
        }
    return {
        "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
        "code": "rest",
        "display": "RESTful Operation",
    }


def _fhir_outcome(outcome: str) -> dict[str, Any]:
    code = {"success": "0", "failure": "4", "refused": "4", "emergency-override": "0"}[outcome]
    return {
        "code": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-outcome",
            "code": code,
        },
        "detail": [{"text": outcome}],
    }


def to_fhir(event: AuditEvent, observer: str) -> dict[str, Any]:
    """One entry as a FHIR R5 AuditEvent resource (IHE BALP basic shape)."""
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP",
                    "display": "information recipient",
                }
            ]
        },
        "who": {"identifier": {"value": event.actor}, "display": event.actor},
        "requestor": True,
        "networkString": event.ip or None,
    }
    if event.role:
        agent["role"] = [{"text": event.role}]
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(event.seq),
        "meta": {
            "profile": [
                "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Read"
                if _fhir_action(event.action) == "R"
                else "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Query"
            ]
        },
        "category": [{"coding": [_balp_type(event.action)]}],
        "code": {"coding": [{"system": "urn:concilium:audit-action", "code": event.action}]},
        "action": _fhir_action(event.action),
        "recorded": event.at.isoformat(),
        "outcome": _fhir_outcome(event.outcome),
        "agent": [{k: v for k, v in agent.items() if v is not None}],
        "source": {"observer": {"display": observer}},
        "entity": [],
        "extension": [
            {"url": "urn:concilium:audit-chain:seq", "valueInteger": event.seq},
            {"url": "urn:concilium:audit-chain:hash", "valueString": event.hash},
        ],
    }
    if event.patient_id is not None:
        resource["entity"].append(
            {
                "what": {"reference": f"Patient/{event.patient_id}"},
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    if event.object_kind and event.object_id:
        resource["entity"].append(
            {"what": {"identifier": {"value": f"{event.object_kind}/{event.object_id}"}}}
        )
    if event.outcome == "emergency-override":
        resource["purposeOfEvent"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": "ETREAT",
                        "display": "Emergency Treatment",
                    }
                ]
            }
        ]
    return resource


# --- RFC 5424 syslog ------------------------------------------------------------------------

_SEVERITY = {"success": 6, "failure": 4, "refused": 4, "emergency-override": 2}
_FACILITY_AUTHPRIV = 10
_SD_ESCAPE = str.maketrans({'"': '\\"', "\\": "\\\\", "]": "\\]"})


def to_syslog(event: AuditEvent, hostname: str | None = None) -> str:
    """One entry as an RFC 5424 line with the entry's fields as structured data."""
    pri = _FACILITY_AUTHPRIV * 8 + _SEVERITY[event.outcome]
    host = (hostname or socket.gethostname())[:255] or "-"
    params = {
        "seq": event.seq,
        "actor": event.actor,
        "role": event.role,
        "site": event.site_id if event.site_id is not None else "",
        "patient": event.patient_id if event.patient_id is not None else "",
        "object": f"{event.object_kind}/{event.object_id}" if event.object_kind else "",
        "outcome": event.outcome,
        "ip": event.ip,
        "hash": event.hash,
    }
    sd = " ".join(f'{k}="{str(v).translate(_SD_ESCAPE)}"' for k, v in params.items())
    timestamp = event.at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    msgid = event.action.replace(" ", "_")[:32]
    return f"<{pri}>1 {timestamp} {host} concilium - {msgid} [audit@32473 {sd}] {event.action}"


def export_lines(events: Iterable[AuditEvent], fmt: str, observer: str) -> Iterator[str]:
    for event in events:
        if fmt == "fhir":
            yield json.dumps(to_fhir(event, observer), sort_keys=True)
        elif fmt == "syslog":
            yield to_syslog(event, observer)
        else:
            raise ValueError(f"unknown export format {fmt!r}; use fhir or syslog")


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor narrows the trail to."""

    actor: str = ""
    action: str = ""
    outcome: str = ""
    patient_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def refusals_of(
    session: Session, actor: str, object_kind: str, object_id: str, limit: int = 5
) -> list[AuditEvent]:
    """The latest refusals of what ``actor`` asked for, or of calls claiming the object
    ``object_kind``/``object_id`` (a DICOM node refused at association), newest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.outcome == "refused")
        .where(
            (AuditEvent.actor == actor)
            | ((AuditEvent.object_kind == object_kind) & (AuditEvent.object_id == object_id))
        )
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def search(
    session: Session,
    site_ids: frozenset[int] | None,
    criteria: AuditFilter,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    """Entries an auditor may see (their sites' events, their sites' users' acts, and
    whatever concerns their sites' patients, such as another hospital's emergency access),
    newest first. ``site_ids`` None means the whole trail."""
    from concilium.platform.tables import Membership, PatientIdentifier

    query = select(AuditEvent).order_by(AuditEvent.seq.desc())
    if site_ids is not None:
        query = query.where(
            AuditEvent.site_id.in_(site_ids)
            | AuditEvent.actor_id.in_(
                select(Membership.user_id).where(Membership.site_id.in_(site_ids))
            )
            | AuditEvent.patient_id.in_(
                select(PatientIdentifier.patient_id).where(PatientIdentifier.site_id.in_(site_ids))
            )
        )
    if criteria.actor:
        query = query.where(AuditEvent.actor == criteria.actor.strip().lower())
    if criteria.action:
        query = query.where(AuditEvent.action.startswith(criteria.action.strip()))
    if criteria.outcome:
        query = query.where(AuditEvent.outcome == criteria.outcome)
    if criteria.patient_id is not None:
        query = query.where(AuditEvent.patient_id == criteria.patient_id)
    if criteria.since is not None:
        query = query.where(AuditEvent.at >= criteria.since)
    if criteria.until is not None:
        query = query.where(AuditEvent.at < criteria.until)
    return list(session.execute(query.limit(limit).offset(offset)).scalars())
