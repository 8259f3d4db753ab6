"""The archive: receive, index, query, retrieve and remove instances; the DICOM nodes it knows.

Protocol adapters (DIMSE in `concilium.imaging.dimse`, DICOMweb routes) call these functions
and translate their results and exceptions into the protocol's own answers. Every access is
decided by `concilium.platform.policy.decide`; this module only gathers the facts.

Receiving (PS3.4 B.2.2 C-STORE SCP behaviour) follows one order so that an acknowledged
instance is never lost and a refused one leaves nothing behind: stage the bytes (fsynced) →
validate → commit them to the store (fsynced rename) → index them and audit in one database
transaction → publish ``study.received`` → return, and only then does the adapter answer
success. A crash between the store commit and the database commit leaves an unindexed file,
which `Archive.recover` removes at the next start.
"""

from __future__ import annotations

import datetime as dt
import enum
import fcntl
import io
import logging
import operator
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from concilium.imaging.actions import ImagingAction
from concilium.imaging.deidentify import (
    DeidentificationError,
    DeidentificationOptions,
    TemporalOption,
    deidentify,
)
from concilium.imaging.parsing import (
    FailureReason,
    IndexRecord,
    InvalidInstance,
    parse_da,
    parse_instance,
    parse_tm,
)
from concilium.imaging.storage import InstanceStore, StagedObject, StoredObject
from concilium.imaging.tables import (
    ImagingInstance,
    ImagingSeries,
    ImagingStudy,
    RemoteApplicationEntity,
)
from concilium.platform import audit
from concilium.platform.db import transaction, utcnow
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.events import EventBus
from concilium.platform.patients import find_by_identifier
from concilium.platform.policy import (
    Action,
    Decision,
    Principal,
    Target,
    decide,
    has_scope,
    visible_sites,
)
from concilium.platform.sharing import active_share_targets, shared_with

__all__ = [
    "DEVICE_ROLE",
    "Archive",
    "ArchiveStatistics",
    "DuplicatePolicy",
    "IngestResult",
    "InvalidQuery",
    "Level",
    "Match",
    "NotAuthorized",
    "ReceivedInstance",
    "RejectionReason",
    "RetrievableInstance",
    "Sender",
    "StoredInstance",
    "add_remote_ae",
    "delete_study",
    "export_path",
    "find",
    "ingest",
    "ingest_batch",
    "list_remote_aes",
    "locate",
    "peer_principal",
    "receive_files",
    "reject",
    "remote_ae",
    "remove_remote_ae",
    "search",
    "set_remote_ae_tls",
    "statistics",
    "stored_instances",
    "study_by_uid",
    "study_target",
    "write_teaching_export",
]

log = logging.getLogger(__name__)

DEVICE_ROLE = "technologist"
"""Role a registered DICOM node holds at its site: it sends and fetches images for the
technologists there. Its registration flags become scopes (as for an API token) that narrow
it to the imaging actions it was allowed, so a node never reaches patient records."""
DEVICE_USER_ID = 0
"""User id of node principals; no account has it, so no share to a person ever matches."""
STUDY_KIND = "study"
"""``resource_kind`` of study shares in `concilium.platform.sharing`."""
PATIENT_KIND = "patient"
"""``resource_kind`` of patient shares, whose ``resource_id`` is the patient's id."""
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")


class NotAuthorized(InvalidInstance):
    """The policy refused the request (PS3.7 C.4 status 0124 "Refused: Not Authorized")."""

    reason = FailureReason.NOT_AUTHORIZED


class InvalidQuery(ValueError):
    """A query identifier that cannot be processed (PS3.4 C.4.1.1.4 status A900)."""


class DuplicatePolicy(enum.StrEnum):
    """What to do when a SOP Instance UID arrives again with different bytes."""

    KEEP = "keep"
    """Keep the stored instance, answer success and log a warning."""
    REPLACE = "replace"
    """Index the new bytes in place of the old ones."""


class Level(enum.StrEnum):
    """Query/Retrieve Level (0008,0052), PS3.4 C.6.1.1 and C.6.2.1."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


_DEPTH = {Level.PATIENT: 0, Level.STUDY: 1, Level.SERIES: 2, Level.IMAGE: 3}


# --------------------------------------------------------------------------------------------
# The archive and who talks to it


class Archive:
    """The stored files, the index and the event bus of one Concilium process."""

    def __init__(
        self,
        root: Path | str,
        sessions: sessionmaker[Session],
        bus: EventBus,
        *,
        duplicate_policy: DuplicatePolicy = DuplicatePolicy.KEEP,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.store = InstanceStore(root)
        """Content-addressed files."""
        self.sessions = sessions
        """Database sessions."""
        self.bus = bus
        """Where ``study.received`` and ``study.deleted`` are published."""
        self.duplicate_policy = duplicate_policy
        """What a re-sent instance with different bytes does."""
        self.clock = clock
        """Current time, for share and grant expiry."""
        self._lock_file: int | None = None

    def recover(self) -> int:
        """Remove what an interrupted write left behind; returns the number of files removed.

        Runs only when no other process is writing to this store (the writers' shared lock
        is free): a file committed by a live writer is unindexed for a few milliseconds, and
        must not be mistaken for debris.
        """
        fd = os.open(self.store.root / "writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another process writes to the archive; recovery skipped")
                return 0
            removed = self.store.clean_temporary()
            with transaction(self.sessions) as session:
                indexed = set(session.execute(select(ImagingInstance.address)).scalars())
            for address in list(self.store.addresses()):
                if address not in indexed:
                    self.store.delete(address)
                    removed += 1
            if removed:
                log.warning("archive recovery removed %d unacknowledged files", removed)
            return removed
        finally:
            os.close(fd)

    def open_for_writing(self) -> None:
        """Take the writers' shared lock for the life of the process (see `recover`)."""
        if self._lock_file is None:
            fd = os.open(self.store.root / "writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._lock_file = fd

    def close(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None


@dataclass(frozen=True)
class Sender:
    """Who sends an instance, and the site that will own a study it creates."""

    principal: Principal
    """Whom the policy judges."""
    actor: audit.Actor
    """Who appears in the audit trail."""
    site_id: int
    """Owner of new studies: the sending node's or person's site."""
    ae_title: str = ""
    """Calling AE title, when it came over DIMSE."""


def peer_principal(ae: RemoteApplicationEntity, *, as_destination: bool = False) -> Principal:
    """The principal a registered node acts as (requester, or C-MOVE destination)."""
    read_scope = ImagingAction.STUDY_READ.rule.scope
    write_scope = ImagingAction.STUDY_STORE.rule.scope
    scopes: set[str] = set()
    if as_destination:
        if ae.allow_move_destination:
            scopes.add(read_scope)
    else:
        if ae.allow_store:
            scopes.add(write_scope)
        if ae.allow_query:
            scopes.add(read_scope)
    return Principal(
        user_id=DEVICE_USER_ID,
        username=f"ae:{ae.ae_title}",
        roles={ae.site_id: frozenset({DEVICE_ROLE})},
        scopes=frozenset(scopes),
    )


def peer_actor(ae: RemoteApplicationEntity, ip: str = "") -> audit.Actor:
    """How a node appears in the audit trail."""
    return audit.Actor(None, f"ae:{ae.ae_title}", role=DEVICE_ROLE, site_id=ae.site_id, ip=ip)


def may_read_any(principal: Principal) -> bool:
    """Whether ``principal`` holds any way to read studies (else queries are refused)."""
    rule = ImagingAction.STUDY_READ.rule
    return has_scope(principal, rule) and (
        bool(principal.roles) or bool(principal.emergency_patient_ids)
    )


# --------------------------------------------------------------------------------------------
# Policy facts


def study_target(session: Session, study: ImagingStudy, now: dt.datetime) -> Target:
    """Facts the policy needs about a study: its site, its patient and active shares.

    A share of the study or of its patient counts: sharing a patient's record for a reading
    or a meeting shares their images too.
    """
    return _target_of(session, study.study_instance_uid, study.site_id, study.patient_id, now)


def _target_of(
    session: Session, study_uid: str, site_id: int, patient_id: int | None, now: dt.datetime
) -> Target:
    sites, users = active_share_targets(session, STUDY_KIND, study_uid, now)
    if patient_id is not None:
        p_sites, p_users = active_share_targets(session, PATIENT_KIND, str(patient_id), now)
        sites, users = sites | p_sites, users | p_users
    return Target(
        kind=STUDY_KIND,
        id=study_uid,
        site_ids=frozenset({site_id}),
        patient_id=patient_id,
        shared_site_ids=sites,
        shared_user_ids=users,
    )


def _new_study_target(site_id: int, study_uid: str) -> Target:
    return Target(kind=STUDY_KIND, id=study_uid, site_ids=frozenset({site_id}))


def _refuse(
    archive: Archive, actor: audit.Actor, action: Action, target: Target, decision: Decision
) -> NotAuthorized:
    # The refusal is kept even though the work is not: its own transaction.
    with transaction(archive.sessions) as session:
        audit.record_refusal(session, actor, str(action), target, decision.reason)
    return NotAuthorized(decision.reason)


# --------------------------------------------------------------------------------------------
# Receiving


class IngestOutcome(enum.StrEnum):
    """What `ingest` did with an instance; every outcome is acknowledged as a success."""

    STORED = "stored"
    """New instance, stored and indexed."""
    DUPLICATE = "duplicate"
    """The same bytes were already stored."""
    KEPT = "kept"
    """Different bytes under a known SOP Instance UID; the stored ones were kept."""
    REPLACED = "replaced"
    """Different bytes under a known SOP Instance UID; they replaced the stored ones."""


@dataclass(frozen=True)
class IngestResult:
    """What happened to one received instance."""

    outcome: IngestOutcome
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    address: str
    """Address of the bytes now indexed for this SOP Instance UID."""


def ingest(archive: Archive, sender: Sender, chunks: Iterable[bytes]) -> IngestResult:
    """Receive one Part 10 object (PS3.10 7.1) and make it part of the archive.

    Returns only once the instance is durable, indexed and audited. Raises an
    `InvalidInstance` subclass (validation, `NotAuthorized`) or a storage error; in every
    failure case nothing of the object remains in the store or the index.
    """
    staged = archive.store.stage_iter(chunks)
    with staged:
        parsed = parse_instance(staged.path)
        record = parsed.record
        stored = staged.commit()
    try:
        result, obsolete = _index(archive, sender, record, stored)
    except BaseException:
        if stored.created:
            _forget_file(archive, stored.address)
        raise
    if result.outcome is IngestOutcome.KEPT and stored.created:
        _forget_file(archive, stored.address)
    if obsolete is not None:
        _forget_file(archive, obsolete)
    _announce(archive, sender, result, record)
    return result


def _announce(archive: Archive, sender: Sender, result: IngestResult, record: IndexRecord) -> None:
    if result.outcome in (IngestOutcome.STORED, IngestOutcome.REPLACED):
        archive.bus.publish(
            "study.received",
            {
                "study_instance_uid": result.study_instance_uid,
                "series_instance_uid": result.series_instance_uid,
                "sop_instance_uid": result.sop_instance_uid,
                "site_id": sender.site_id,
                "accession_number": record.study.accession_number,
                "modality": record.series.modality,
            },
        )


@dataclass(frozen=True, slots=True)
class ReceivedInstance:
    """A validated object whose bytes are durable in the store's temporary area, waiting for
    `ingest_batch` to commit and index it."""

    staged: StagedObject
    """The synced bytes, under their address."""
    record: IndexRecord
    """What the index keeps, read once from the header."""


def receive_files(
    archive: Archive, files: Sequence[tuple[Path, str | None]]
) -> list[ReceivedInstance | Exception]:
    """Validate Part 10 files written to the store's temporary area (e.g. the parts of a
    STOW-RS request) and sync their bytes where they are.

    Each file comes with the SHA-256 its writer computed as it wrote it, or None to have it
    read again. Returns, in order, each file's `ReceivedInstance` or the exception that
    refuses it (an `InvalidInstance` subclass, a storage error); a refused file stays the
    caller's to remove. Files are parsed one after the other in the calling thread, then
    the valid ones are synced side by side in the store's threads. Syncs started while the
    parsing goes on would wait for the disk in parallel with it, but each would also take
    the interpreter back from the parser, before and after its sync: those hand-overs cost
    more processor time than the overlap saves waiting.
    """
    results: list[ReceivedInstance | Exception] = []
    valid: list[tuple[int, IndexRecord, Path, str | None]] = []
    for path, sha256 in files:
        try:
            record = parse_instance(path).record
        except Exception as exc:
            results.append(exc)
            continue
        results.append(InvalidInstance("not synced"))
        valid.append((len(results) - 1, record, path, sha256))
    pending = [
        (index, record, archive.store.adopt_later(path, address=sha256))
        for index, record, path, sha256 in valid
    ]
    for index, record, synced in pending:
        try:
            results[index] = ReceivedInstance(synced.result(), record)
        except Exception as exc:
            results[index] = exc
    return results


def ingest_batch(
    archive: Archive, sender: Sender, received: Sequence[ReceivedInstance]
) -> list[IngestResult | Exception]:
    """Make received instances (e.g. the parts of one STOW-RS request) part of the archive
    as one batch; their staged files are consumed.

    The files are committed to the store together (`InstanceStore.commit_all`: renamed, each
    directory synced once), then indexed in one transaction with one audit entry per study
    (`_index_batch`); an instance refused or failing leaves no row and does not stop the
    others. Returns, in order, each instance's result or exception, once every stored
    instance is durable and indexed. A crash before the commit leaves only unindexed files,
    which `Archive.recover` removes.
    """
    committed = archive.store.commit_all([item.staged for item in received])
    stored = {i: c for i, c in enumerate(committed) if isinstance(c, StoredObject)}
    results: list[IngestResult | Exception] = [
        c if isinstance(c, Exception) else InvalidInstance("not indexed") for c in committed
    ]
    try:
        with transaction(archive.sessions) as session:
            indexed, obsolete = _index_batch(
                session,
                archive,
                sender,
                [(received[i].record, stored_object) for i, stored_object in stored.items()],
                archive.clock(),
            )
    except BaseException:
        for stored_object in stored.values():
            if stored_object.created:
                _forget_file(archive, stored_object.address)
        raise
    for i, outcome in zip(stored, indexed, strict=True):
        results[i] = outcome
    for i, stored_object in stored.items():
        outcome = results[i]
        in_use = isinstance(outcome, IngestResult) and outcome.outcome is not IngestOutcome.KEPT
        if stored_object.created and not in_use:
            _forget_file(archive, stored_object.address)
    for address in obsolete:
        _forget_file(archive, address)
    for i, outcome in enumerate(results):
        if isinstance(outcome, IngestResult):
            _announce(archive, sender, outcome, received[i].record)
    return results


@dataclass
class _StudyReceipt:
    """What one request stored in one study: the content of its audit entry."""

    study_uid: str
    patient_id: int | None
    basis: str
    instances: int = 0
    bytes: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: IngestOutcome, size: int) -> None:
        self.instances += 1
        self.bytes += size
        self.outcomes[str(outcome)] = self.outcomes.get(str(outcome), 0) + 1


_IN_CHUNK = 500
"""UIDs per ``IN`` list, well under every backend's limit on bound parameters."""


def _index_batch(
    session: Session,
    archive: Archive,
    sender: Sender,
    items: Sequence[tuple[IndexRecord, StoredObject]],
    now: dt.datetime,
) -> tuple[list[IngestResult | Exception], list[str]]:
    """Index stored instances within the caller's transaction; returns each one's result or
    exception, in order, and the files that replaced instances leave behind.

    The policy is asked once per study, and the new instances of a study go in with one
    multi-row INSERT (`_insert_new`). An instance already indexed or repeated in the batch
    takes `_index_in` under its own savepoint, as does every instance of a study whose
    INSERT failed (e.g. another writer has just indexed one of its UIDs): none of them
    leaves a row unless it is reported stored. Each study the request stored in gets one
    audit entry (who, which study and patient, how many instances and bytes); each study
    the policy refused, one refusal.
    """
    results: list[IngestResult | Exception | None] = [None] * len(items)
    obsolete: list[str] = []
    receipts: dict[str, _StudyReceipt] = {}
    refused: set[str] = set()
    uids = [record.instance.sop_instance_uid for record, _ in items]
    known: set[str] = set()
    for start in range(0, len(uids), _IN_CHUNK):
        chunk = uids[start : start + _IN_CHUNK]
        query = select(ImagingInstance.sop_instance_uid).where(
            ImagingInstance.sop_instance_uid.in_(chunk)
        )
        known.update(session.execute(query).scalars())
    new_by_study: dict[str, list[int]] = {}
    one_by_one: list[int] = []
    for i, uid in enumerate(uids):
        if uid in known:
            one_by_one.append(i)
        else:
            known.add(uid)  # a repeat later in the batch meets this one as a duplicate
            new_by_study.setdefault(items[i][0].study.study_instance_uid, []).append(i)

    for study_uid, indexes in new_by_study.items():
        study = _get_study(session, study_uid)
        target = (
            study_target(session, study, now)
            if study is not None
            else _new_study_target(sender.site_id, study_uid)
        )
        decision = decide(sender.principal, ImagingAction.STUDY_STORE, target)
        if not decision.allowed:
            audit.record_refusal(
                session, sender.actor, str(ImagingAction.STUDY_STORE), target, decision.reason
            )
            refused.add(study_uid)
            for i in indexes:
                results[i] = NotAuthorized(decision.reason)
            continue
        try:
            with session.begin_nested():
                study, outcomes = _insert_new(session, sender, study, indexes, items, now)
        except Exception as exc:
            # The statement's parameters stay out of the log: they describe patients' images.
            log.info("a batch INSERT failed (%s); indexing one by one", type(exc).__name__)
            one_by_one.extend(indexes)
            continue
        for i, outcome in outcomes.items():
            results[i] = outcome
            if isinstance(outcome, IngestResult):
                receipt = receipts.get(study_uid) or receipts.setdefault(
                    study_uid, _StudyReceipt(study_uid, study.patient_id, decision.basis)
                )
                receipt.add(outcome.outcome, items[i][1].size)

    for i in sorted(one_by_one):
        record, stored = items[i]
        try:
            with session.begin_nested():
                indexed = _index_in(session, archive, sender, record, stored, now)
        except _Refusal as refusal:
            if refusal.target.id not in refused:
                refused.add(refusal.target.id)
                audit.record_refusal(
                    session,
                    sender.actor,
                    str(ImagingAction.STUDY_STORE),
                    refusal.target,
                    refusal.decision.reason,
                )
            results[i] = NotAuthorized(refusal.decision.reason)
            continue
        except Exception as exc:
            results[i] = exc
            continue
        results[i] = indexed.result
        if indexed.obsolete is not None:
            obsolete.append(indexed.obsolete)
        study_uid = indexed.result.study_instance_uid
        receipt = receipts.get(study_uid) or receipts.setdefault(
            study_uid, _StudyReceipt(study_uid, indexed.patient_id, indexed.basis)
        )
        receipt.add(indexed.result.outcome, stored.size)

    for receipt in receipts.values():
        audit.record(
            session,
            sender.actor,
            str(ImagingAction.STUDY_STORE),
            "success",
            object_kind=STUDY_KIND,
            object_id=receipt.study_uid,
            patient_id=receipt.patient_id,
            detail={
                "instances": receipt.instances,
                "bytes": receipt.bytes,
                "outcomes": receipt.outcomes,
                "basis": receipt.basis,
            },
        )
    return [r if r is not None else InvalidInstance("not indexed") for r in results], obsolete


def _insert_new(
    session: Session,
    sender: Sender,
    study: ImagingStudy | None,
    indexes: Sequence[int],
    items: Sequence[tuple[IndexRecord, StoredObject]],
    now: dt.datetime,
) -> tuple[ImagingStudy, dict[int, IngestResult | Exception]]:
    """Index instances of one study, none of them indexed yet, with one multi-row INSERT.

    Runs under the caller's savepoint: an error leaves nothing. An instance whose series
    belongs to another study is answered with `InvalidInstanceInStudy` and not inserted.
    """
    if study is None:
        study = _create_study(session, sender.site_id, items[indexes[0]][0])
    series_by_uid: dict[str, ImagingSeries | InvalidInstance] = {}
    outcomes: dict[int, IngestResult | Exception] = {}
    rows: list[dict[str, Any]] = []
    for i in indexes:
        record, stored = items[i]
        series_uid = record.series.series_instance_uid
        if series_uid not in series_by_uid:
            try:
                series_by_uid[series_uid] = _get_or_create_series(session, study, record)
            except InvalidInstanceInStudy as exc:
                series_by_uid[series_uid] = exc
        series = series_by_uid[series_uid]
        if isinstance(series, InvalidInstance):
            outcomes[i] = series
            continue
        rows.append(_instance_row(record, stored, series, sender, now))
        outcomes[i] = IngestResult(
            IngestOutcome.STORED,
            study.study_instance_uid,
            series_uid,
            record.instance.sop_instance_uid,
            record.instance.sop_class_uid,
            stored.address,
        )
    if rows:
        session.execute(insert(ImagingInstance), rows)
        study.updated_at = now
        session.flush()
    return study, outcomes


def _instance_row(
    record: IndexRecord,
    stored: StoredObject,
    series: ImagingSeries,
    sender: Sender,
    now: dt.datetime,
) -> dict[str, Any]:
    """Column values of an instance's index row."""
    instance = record.instance
    return {
        "series_id": series.id,
        "sop_instance_uid": instance.sop_instance_uid,
        "sop_class_uid": instance.sop_class_uid,
        "transfer_syntax_uid": instance.transfer_syntax_uid,
        "instance_number": instance.instance_number,
        "rows": instance.rows,
        "columns": instance.columns,
        "number_of_frames": instance.number_of_frames,
        "bits_allocated": instance.bits_allocated,
        "photometric_interpretation": _clip(instance.photometric_interpretation, 16),
        "content_date": instance.content_date,
        "content_time": instance.content_time,
        "specific_character_set": _clip(instance.specific_character_set, 128),
        "address": stored.address,
        "size": stored.size,
        "source_ae_title": sender.ae_title,
        "received_at": now,
    }


def _forget_file(archive: Archive, address: str) -> None:
    """Delete a stored file unless an index row still points at it.

    Identical bytes have one address: another association may have indexed the same object
    meanwhile, and its row must keep its file.
    """
    with transaction(archive.sessions) as session:
        used = session.execute(
            select(ImagingInstance.id).where(ImagingInstance.address == address).limit(1)
        ).first()
    if used is None:
        archive.store.delete(address)


def _index(
    archive: Archive, sender: Sender, record: IndexRecord, stored: StoredObject
) -> tuple[IngestResult, str | None]:
    """Index and audit one stored instance in one transaction; returns the result and a file
    to drop."""
    try:
        with transaction(archive.sessions) as session:
            indexed = _index_in(session, archive, sender, record, stored, archive.clock())
            audit.record(
                session,
                sender.actor,
                str(ImagingAction.STUDY_STORE),
                "success",
                object_kind=STUDY_KIND,
                object_id=indexed.result.study_instance_uid,
                patient_id=indexed.patient_id,
                detail={
                    "sop_instance_uid": indexed.result.sop_instance_uid,
                    "outcome": str(indexed.result.outcome),
                    "basis": indexed.basis,
                    "bytes": stored.size,
                },
            )
            return indexed.result, indexed.obsolete
    except _Refusal as refusal:
        raise _refuse(
            archive, sender.actor, ImagingAction.STUDY_STORE, refusal.target, refusal.decision
        ) from None


class _Refusal(Exception):
    """The policy refused to store an instance (the caller keeps the refusal)."""

    def __init__(self, target: Target, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.target = target
        self.decision = decision


@dataclass(frozen=True, slots=True)
class _Indexed:
    """What `_index_in` did, and what its caller's audit entry needs."""

    result: IngestResult
    obsolete: str | None
    """Address of bytes an instance replaced, to drop once committed."""
    patient_id: int | None
    """Platform patient of the study the instance is in."""
    basis: str
    """Why the policy let the sender store there."""


def _index_in(
    session: Session,
    archive: Archive,
    sender: Sender,
    record: IndexRecord,
    stored: StoredObject,
    now: dt.datetime,
) -> _Indexed:
    """Index one stored instance within the caller's transaction; the caller audits it."""
    uid = record.instance.sop_instance_uid
    existing = session.execute(
        select(ImagingInstance).where(ImagingInstance.sop_instance_uid == uid)
    ).scalar_one_or_none()
    study = _get_study(session, record.study.study_instance_uid)
    target = (
        study_target(session, study, now)
        if study is not None
        else _new_study_target(sender.site_id, record.study.study_instance_uid)
    )
    decision = decide(sender.principal, ImagingAction.STUDY_STORE, target)
    if not decision.allowed:
        raise _Refusal(target, decision)
    obsolete: str | None = None
    if existing is not None:
        if existing.address == stored.address:
            outcome = IngestOutcome.DUPLICATE
        elif archive.duplicate_policy is DuplicatePolicy.KEEP:
            outcome = IngestOutcome.KEPT
            log.warning(
                "instance re-sent with different content; the stored one is kept",
                extra={"sop_instance_uid": uid, "calling_ae": sender.ae_title},
            )
        else:
            outcome = IngestOutcome.REPLACED
            obsolete = existing.address
            session.delete(existing)
            session.flush()
        if outcome is not IngestOutcome.REPLACED:
            series = existing.series
            return _Indexed(
                IngestResult(
                    outcome,
                    series.study.study_instance_uid,
                    series.series_instance_uid,
                    uid,
                    existing.sop_class_uid,
                    existing.address,
                ),
                None,
                series.study.patient_id,
                decision.basis,
            )
    else:
        outcome = IngestOutcome.STORED
    if study is None:
        study = _create_study(session, sender.site_id, record)
    series = _get_or_create_series(session, study, record)
    session.add(ImagingInstance(**_instance_row(record, stored, series, sender, now)))
    study.updated_at = now
    session.flush()
    return _Indexed(
        IngestResult(
            outcome,
            study.study_instance_uid,
            series.series_instance_uid,
            uid,
            record.instance.sop_class_uid,
            stored.address,
        ),
        obsolete,
        study.patient_id,
        decision.basis,
    )


def _clip(value: str | None, length: int) -> str | None:
    # Modalities overrun VR lengths; the index keeps what fits, the file keeps everything.
    return value[:length] if value is not None else None


def _authorised_study(
    archive: Archive,
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    study_uid: str,
    action: Action,
    now: dt.datetime,
) -> tuple[ImagingStudy, Target]:
    """The study, once the policy allows ``action`` on it; a refusal is audited and raised."""
    study = _get_study(session, study_uid)
    if study is None:
        raise NotFound(f"study {study_uid} not found")
    target = study_target(session, study, now)
    decision = decide(principal, action, target)
    if not decision.allowed:
        session.rollback()
        raise _refuse(archive, actor, action, target, decision)
    return study, target


def _get_study(session: Session, study_uid: str) -> ImagingStudy | None:
    return session.execute(
        select(ImagingStudy).where(ImagingStudy.study_instance_uid == study_uid)
    ).scalar_one_or_none()


def _create_study(session: Session, site_id: int, record: IndexRecord) -> ImagingStudy:
    p, s = record.patient, record.study
    patient = find_by_identifier(session, site_id, p.patient_id) if p.patient_id else None
    study = ImagingStudy(
        study_instance_uid=s.study_instance_uid,
        site_id=site_id,
        patient_id=patient.id if patient is not None else None,
        dicom_patient_id=p.patient_id[:64],
        issuer_of_patient_id=_clip(p.issuer_of_patient_id, 64),
        patient_name=p.patient_name[:256],
        patient_name_folded=p.patient_name[:256].casefold()[:256],
        patient_birth_date=p.birth_date,
        patient_sex=_clip(p.sex, 16),
        study_date=s.study_date,
        study_time=s.study_time,
        accession_number=_clip(s.accession_number, 64),
        study_id=_clip(s.study_id, 64),
        study_description=_clip(s.study_description, 256),
        referring_physician_name=_clip(s.referring_physician_name, 256),
        referring_physician_name_folded=_clip(
            s.referring_physician_name.casefold() if s.referring_physician_name else None, 256
        ),
        institution_name=_clip(s.institution_name, 256),
    )
    # Another association may be creating the same study right now: a savepoint lets the
    # loser of that race pick up the winner's row instead of failing the instance.
    try:
        with session.begin_nested():
            session.add(study)
    except IntegrityError:
        found = _get_study(session, s.study_instance_uid)
        if found is None:
            raise
        return found
    return study


def _get_or_create_series(
    session: Session, study: ImagingStudy, record: IndexRecord
) -> ImagingSeries:
    s = record.series
    query = select(ImagingSeries).where(ImagingSeries.series_instance_uid == s.series_instance_uid)
    found = session.execute(query).scalar_one_or_none()
    if found is not None:
        if found.study_id != study.id:
            raise InvalidInstanceInStudy(s.series_instance_uid)
        return found
    series = ImagingSeries(
        study_id=study.id,
        series_instance_uid=s.series_instance_uid,
        modality=_clip(s.modality, 16),
        series_number=s.series_number,
        series_description=_clip(s.series_description, 256),
        body_part_examined=_clip(s.body_part_examined, 64),
        series_date=s.series_date,
        series_time=s.series_time,
        performed_procedure_step_start_date=s.performed_procedure_step_start_date,
    )
    try:
        with session.begin_nested():
            session.add(series)
    except IntegrityError:
        found = session.execute(query).scalar_one_or_none()
        if found is None:
            raise
        return found
    return series


class InvalidInstanceInStudy(InvalidInstance):
    """The Series Instance UID already belongs to another study (PS3.3 C.7.3.1)."""

    reason = FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS

    def __init__(self, series_uid: str) -> None:
        super().__init__(f"series {series_uid} already belongs to another study")


# --------------------------------------------------------------------------------------------
# Query matching, PS3.4 C.2.2.2


class _Kind(enum.Enum):
    TEXT = "text"
    """Single value and wildcard matching, case-sensitive (C.2.2.2.1, C.2.2.2.4)."""
    PERSON_NAME = "pn"
    """As TEXT, but insensitive to case (C.2.2.2.1 allows it for PN)."""
    UID = "uid"
    """Single value or list of UIDs (C.2.2.2.2); no wildcards."""
    DATE = "date"
    """Single value or range (C.2.2.2.5)."""
    TIME = "time"
    """Single value or range (C.2.2.2.5)."""
    INTEGER = "int"
    """Single value."""


@dataclass(frozen=True)
class _Key:
    level: Level
    attribute: str
    kind: _Kind


_KEYS: Mapping[str, _Key] = {
    "PatientID": _Key(Level.PATIENT, "dicom_patient_id", _Kind.TEXT),
    "PatientName": _Key(Level.PATIENT, "patient_name", _Kind.PERSON_NAME),
    "IssuerOfPatientID": _Key(Level.PATIENT, "issuer_of_patient_id", _Kind.TEXT),
    "PatientBirthDate": _Key(Level.PATIENT, "patient_birth_date", _Kind.DATE),
    "PatientSex": _Key(Level.PATIENT, "patient_sex", _Kind.TEXT),
    "StudyInstanceUID": _Key(Level.STUDY, "study_instance_uid", _Kind.UID),
    "StudyDate": _Key(Level.STUDY, "study_date", _Kind.DATE),
    "StudyTime": _Key(Level.STUDY, "study_time", _Kind.TIME),
    "AccessionNumber": _Key(Level.STUDY, "accession_number", _Kind.TEXT),
    "StudyID": _Key(Level.STUDY, "study_id", _Kind.TEXT),
    "StudyDescription": _Key(Level.STUDY, "study_description", _Kind.TEXT),
    "ReferringPhysicianName": _Key(Level.STUDY, "referring_physician_name", _Kind.PERSON_NAME),
    "InstitutionName": _Key(Level.STUDY, "institution_name", _Kind.TEXT),
    "SeriesInstanceUID": _Key(Level.SERIES, "series_instance_uid", _Kind.UID),
    "Modality": _Key(Level.SERIES, "modality", _Kind.TEXT),
    "SeriesNumber": _Key(Level.SERIES, "series_number", _Kind.INTEGER),
    "SeriesDescription": _Key(Level.SERIES, "series_description", _Kind.TEXT),
    "BodyPartExamined": _Key(Level.SERIES, "body_part_examined", _Kind.TEXT),
    "SeriesDate": _Key(Level.SERIES, "series_date", _Kind.DATE),
    "SeriesTime": _Key(Level.SERIES, "series_time", _Kind.TIME),
    "PerformedProcedureStepStartDate": _Key(
        Level.SERIES, "performed_procedure_step_start_date", _Kind.DATE
    ),
    "SOPInstanceUID": _Key(Level.IMAGE, "sop_instance_uid", _Kind.UID),
    "SOPClassUID": _Key(Level.IMAGE, "sop_class_uid", _Kind.UID),
    "InstanceNumber": _Key(Level.IMAGE, "instance_number", _Kind.INTEGER),
    "ContentDate": _Key(Level.IMAGE, "content_date", _Kind.DATE),
    "ContentTime": _Key(Level.IMAGE, "content_time", _Kind.TIME),
    "Rows": _Key(Level.IMAGE, "rows", _Kind.INTEGER),
    "Columns": _Key(Level.IMAGE, "columns", _Kind.INTEGER),
    "NumberOfFrames": _Key(Level.IMAGE, "number_of_frames", _Kind.INTEGER),
    "BitsAllocated": _Key(Level.IMAGE, "bits_allocated", _Kind.INTEGER),
    "PhotometricInterpretation": _Key(Level.IMAGE, "photometric_interpretation", _Kind.TEXT),
}
"""Matching keys the index holds, by keyword (PS3.4 C.6.1.1 tables C.6-1 to C.6-4)."""

_TABLE_OF = {
    Level.PATIENT: ImagingStudy,
    Level.STUDY: ImagingStudy,
    Level.SERIES: ImagingSeries,
    Level.IMAGE: ImagingInstance,
}
_UNIQUE_KEY = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}
_WILDCARDS = frozenset("*?")


def _column(key: _Key) -> Any:
    return getattr(_TABLE_OF[key.level], key.attribute)


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, MultiValue | list | tuple):
        return [str(v).strip() for v in raw if str(v).strip()]
    text = str(raw).strip()
    return [part.strip() for part in text.split("\\") if part.strip()] if text else []


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _glob(value: str) -> str:
    return "".join(f"[{c}]" if c == "[" else c for c in value)


def _text_match(column: Any, value: str, *, fold_case: bool, sqlite: bool) -> ColumnElement[bool]:
    if fold_case:
        # ``column`` holds casefolded text already (see ImagingStudy.patient_name_folded).
        value = value.casefold()
        if not _WILDCARDS & set(value):
            return column == value  # type: ignore[no-any-return]
        return column.like(_like(value), escape="\\")  # type: ignore[no-any-return]
    if not _WILDCARDS & set(value):
        return column == value  # type: ignore[no-any-return]
    if sqlite:
        # SQLite's LIKE ignores case; GLOB honours it and uses the same * and ? wildcards.
        return column.op("GLOB")(_glob(value))  # type: ignore[no-any-return]
    return column.like(_like(value), escape="\\")  # type: ignore[no-any-return]


def _range(
    value: str, parse: Callable[[str], Any], *, pad_end: Callable[[str, Any], Any] | None = None
) -> tuple[Any, Any]:
    start_text, dash, end_text = value.partition("-")
    start = parse(start_text) if start_text else None
    end = parse(end_text) if end_text else None
    if (start_text and start is None) or (end_text and end is None) or (not dash and not start):
        raise InvalidQuery(f"not a valid date or time range: {value!r}")
    if not dash:
        end = start
        end_text = start_text
    if end is not None and pad_end is not None:
        end = pad_end(end_text, end)
    return start, end


def _pad_time(text: str, value: dt.time) -> dt.time:
    # "1200" as an upper bound means up to 12:00:59.999999: the bound covers its precision.
    digits = len(text.replace(":", "").partition(".")[0])
    if "." in text:
        return value
    if digits <= 2:
        return value.replace(minute=59, second=59, microsecond=999999)
    if digits <= 4:
        return value.replace(second=59, microsecond=999999)
    return value.replace(microsecond=999999)


def _matcher(key: _Key, values: list[str], sqlite: bool) -> ColumnElement[bool] | None:
    """SQL condition for one matching key, or None for universal matching."""
    column = _column(key)
    if not values or values == ["*"]:
        return None
    if key.kind is _Kind.UID:
        return column.in_(values)  # type: ignore[no-any-return]
    if key.kind is _Kind.DATE or key.kind is _Kind.TIME:
        parse: Callable[[str], Any] = parse_da if key.kind is _Kind.DATE else parse_tm
        pad = _pad_time if key.kind is _Kind.TIME else None
        conditions = []
        for value in values:
            start, end = _range(value, parse, pad_end=pad)
            parts = []
            if start is not None:
                parts.append(column >= start)
            if end is not None:
                parts.append(column <= end)
            conditions.append(and_(*parts))
        return or_(*conditions)
    if key.kind is _Kind.INTEGER:
        try:
            return column.in_([int(v) for v in values])  # type: ignore[no-any-return]
        except ValueError as exc:
            raise InvalidQuery(f"{values!r} is not an integer") from exc
    fold = key.kind is _Kind.PERSON_NAME
    if fold:
        column = getattr(_TABLE_OF[key.level], f"{key.attribute}_folded")
    normalised = [v.rstrip("^") if fold and not _WILDCARDS & set(v) else v for v in values]
    return or_(*(_text_match(column, v, fold_case=fold, sqlite=sqlite) for v in normalised))


@dataclass
class _Query:
    level: Level
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    requested: list[tuple[int, str]] = field(default_factory=list)
    """(tag, keyword) of every attribute asked for, in identifier order."""


def _parse_identifier(identifier: Dataset, level: Level, sqlite: bool) -> _Query:
    query = _Query(level)
    for elem in identifier:
        if elem.tag.group == 0x0002 or elem.tag.is_private:
            continue
        keyword = elem.keyword
        if keyword in ("QueryRetrieveLevel", "SpecificCharacterSet"):
            continue
        query.requested.append((int(elem.tag), keyword))
        key = _KEYS.get(keyword)
        if elem.VR == "SQ" or key is None or _DEPTH[key.level] > _DEPTH[level]:
            # Keys the index does not hold, and keys below the query level, are return keys
            # only: PS3.4 C.2.2.1.2 lets an SCP ignore optional matching keys.
            if keyword == "ModalitiesInStudy" and level is not Level.PATIENT:
                condition = _modalities_match(_values(elem.value), sqlite)
                if condition is not None:
                    query.conditions.append(condition)
            continue
        condition = _matcher(key, _values(elem.value), sqlite)
        if condition is not None:
            query.conditions.append(condition)
    return query


def _modalities_match(values: list[str], sqlite: bool) -> ColumnElement[bool] | None:
    if not values or values == ["*"]:
        return None
    # Not ``_matcher(...) or false()``: the truth value of an SQL "==" expression is not
    # the condition's, and exact matches would never match.
    condition = _matcher(_KEYS["Modality"], values, sqlite)
    if condition is None:
        return None
    return exists(
        select(ImagingSeries.id).where(ImagingSeries.study_id == ImagingStudy.id, condition)
    )


@dataclass(frozen=True)
class _Readable:
    """The studies a principal may read, as the facts an SQL condition tests.

    `decide` grants ``study.read`` on any one fact of a study alone: a role at its site, an
    active share of the study or of its patient to the principal or to one of their sites, a
    break-the-glass grant on its patient. Asking the policy once about each such fact the
    principal holds therefore selects exactly the studies it would grant one by one, without
    asking it again per study (``tests/imaging/test_visibility.py`` holds it to that).
    """

    every_site: bool
    """The policy grants the studies of every site (``visible_sites`` said so)."""
    sites: frozenset[int]
    """Sites whose studies are granted by a role there."""
    shared_studies: frozenset[str]
    """Study Instance UIDs whose active shares to the principal grant them."""
    patients: frozenset[int]
    """Platform patients whose studies are granted by an active share of the patient or a
    break-the-glass grant."""

    def condition(self) -> ColumnElement[bool]:
        """SQL condition on `ImagingStudy` rows, with the bound values of `parameters`."""
        return true() if self.every_site else _VISIBLE

    def parameters(self) -> dict[str, Any]:
        return {
            "visible_sites": sorted(self.sites),
            "visible_studies": sorted(self.shared_studies),
            "visible_patients": sorted(self.patients),
        }


_VISIBLE = or_(
    ImagingStudy.site_id.in_(bindparam("visible_sites", expanding=True)),
    ImagingStudy.study_instance_uid.in_(bindparam("visible_studies", expanding=True)),
    ImagingStudy.patient_id.in_(bindparam("visible_patients", expanding=True)),
)
"""Built once: the facts differ from one request to the next, never the statement."""


def _patient_ids(resource_ids: Iterable[str]) -> frozenset[int]:
    # A patient share names the platform patient by its id, written as a plain number.
    return frozenset(int(i) for i in resource_ids if i.isdecimal() and str(int(i)) == i)


def _readable(session: Session, principal: Principal, now: dt.datetime) -> _Readable:
    """What ``principal`` may read, decided by the policy once per request."""
    if not may_read_any(principal):
        return _Readable(False, frozenset(), frozenset(), frozenset())
    action = ImagingAction.STUDY_READ

    def grants(**facts: Any) -> bool:
        return decide(principal, action, Target(kind=STUDY_KIND, **facts)).allowed

    if visible_sites(principal, action) is None:
        return _Readable(True, frozenset(), frozenset(), frozenset())
    own = frozenset(principal.roles)
    me = principal.user_id
    shared = shared_with(
        session,
        (STUDY_KIND, PATIENT_KIND),
        user_id=me if me != DEVICE_USER_ID and grants(shared_user_ids=frozenset({me})) else None,
        site_ids=frozenset(s for s in own if grants(shared_site_ids=frozenset({s}))),
        now=now,
    )
    return _Readable(
        every_site=False,
        sites=frozenset(s for s in own if grants(site_ids=frozenset({s}))),
        shared_studies=shared[STUDY_KIND],
        patients=_patient_ids(shared[PATIENT_KIND])
        | frozenset(p for p in principal.emergency_patient_ids if grants(patient_id=p)),
    )


def _study_has_accepted_instances() -> ColumnElement[bool]:
    # Rejected instances are gone for every reader (IHE IOCM), and so are emptied levels.
    return exists(
        select(ImagingInstance.id)
        .join(ImagingSeries, ImagingInstance.series_id == ImagingSeries.id)
        .where(ImagingSeries.study_id == ImagingStudy.id, ImagingInstance.rejected_at.is_(None))
    )


def _series_has_accepted_instances() -> ColumnElement[bool]:
    return exists(
        select(ImagingInstance.id).where(
            ImagingInstance.series_id == ImagingSeries.id, ImagingInstance.rejected_at.is_(None)
        )
    )


_PREFIXES = {Level.STUDY: "st_", Level.SERIES: "se_", Level.IMAGE: "in_"}
_OWN_COLUMNS = {
    Level.STUDY: ("id", "site_id", "patient_id", "updated_at"),
    Level.SERIES: ("id",),
    Level.IMAGE: ("id", "transfer_syntax_uid", "address", "size"),
}


def _label(level: Level, attribute: str) -> str:
    return _PREFIXES[Level.STUDY if level is Level.PATIENT else level] + attribute


def _level_columns(level: Level) -> list[Any]:
    table = _TABLE_OF[level]
    keys = [k.attribute for k in _KEYS.values() if _TABLE_OF[k.level] is table]
    return [getattr(table, a).label(_label(level, a)) for a in (*_OWN_COLUMNS[level], *keys)]


_COLUMNS = {
    Level.STUDY: _level_columns(Level.STUDY),
    Level.SERIES: _level_columns(Level.STUDY) + _level_columns(Level.SERIES),
    Level.IMAGE: (
        _level_columns(Level.STUDY) + _level_columns(Level.SERIES) + _level_columns(Level.IMAGE)
    ),
}
"""What a query at each level reads: ids, the policy's facts and every matching key down to
that level, as plain columns (no ORM objects: a page of results is built from rows)."""
_LABELS = {keyword: _label(key.level, key.attribute) for keyword, key in _KEYS.items()}
_SELECTS: dict[Level, Any] = {
    Level.STUDY: (
        select(*_COLUMNS[Level.STUDY])
        .where(_study_has_accepted_instances())
        .order_by(ImagingStudy.study_date, ImagingStudy.id)
    ),
    Level.SERIES: (
        select(*_COLUMNS[Level.SERIES])
        .select_from(ImagingStudy)
        .join(ImagingSeries, ImagingSeries.study_id == ImagingStudy.id)
        .where(_series_has_accepted_instances())
        .order_by(ImagingStudy.id, ImagingSeries.series_number, ImagingSeries.id)
    ),
    Level.IMAGE: (
        select(*_COLUMNS[Level.IMAGE])
        .select_from(ImagingStudy)
        .join(ImagingSeries, ImagingSeries.study_id == ImagingStudy.id)
        .join(ImagingInstance, ImagingInstance.series_id == ImagingSeries.id)
        .where(ImagingInstance.rejected_at.is_(None))
        .order_by(
            ImagingStudy.id, ImagingSeries.id, ImagingInstance.instance_number, ImagingInstance.id
        )
    ),
}
"""Each level's statement, built once (building one costs more than running it); a query
adds its conditions and the reader's visibility."""


def _rows(
    session: Session,
    principal: Principal,
    query: _Query,
    now: dt.datetime,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[Any]:
    """The rows matching ``query`` that ``principal`` may read, in order, one SQL query;
    ``limit`` and ``offset`` page them in the database."""
    readable = _readable(session, principal, now)
    base = _SELECTS[Level.STUDY if query.level is Level.PATIENT else query.level]
    statement = base.where(readable.condition(), *query.conditions)
    if offset:
        statement = statement.offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    # Plain rows of plain columns: the connection skips the ORM's work on each statement.
    return list(session.connection().execute(statement, readable.parameters()))


# --------------------------------------------------------------------------------------------
# C-FIND / QIDO-RS


def _da(value: dt.date | None) -> str:
    return value.strftime("%Y%m%d") if value is not None else ""


def _tm(value: dt.time | None) -> str:
    if value is None:
        return ""
    return value.strftime("%H%M%S") + (f".{value.microsecond:06d}" if value.microsecond else "")


def _dicom_value(value: Any) -> Any:
    if isinstance(value, dt.date):
        return _da(value)
    if isinstance(value, dt.time):
        return _tm(value)
    return "" if value is None else value


@dataclass
class _Counts:
    series: dict[int, int] = field(default_factory=dict)
    instances_by_study: dict[int, int] = field(default_factory=dict)
    instances_by_series: dict[int, int] = field(default_factory=dict)
    modalities: dict[int, list[str]] = field(default_factory=dict)
    sop_classes: dict[int, list[str]] = field(default_factory=dict)


_COUNTED = frozenset(
    {
        "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "ModalitiesInStudy",
        "NumberOfSeriesRelatedInstances",
    }
)
"""Return keys computed from the series and instances of the matched studies."""


def _counts(session: Session, study_ids: set[int], *, sop_classes: bool) -> _Counts:
    counts = _Counts()
    if not study_ids:
        return counts
    ids = sorted(study_ids)
    accepted = ImagingInstance.rejected_at.is_(None)
    connection = session.connection()
    for series_id, study_id, modality, n in connection.execute(
        select(
            ImagingSeries.id,
            ImagingSeries.study_id,
            ImagingSeries.modality,
            func.count(ImagingInstance.id),
        )
        .join(ImagingInstance, ImagingInstance.series_id == ImagingSeries.id)
        .where(ImagingSeries.study_id.in_(ids), accepted)
        .group_by(ImagingSeries.id, ImagingSeries.study_id, ImagingSeries.modality)
    ):
        counts.series[study_id] = counts.series.get(study_id, 0) + 1
        counts.instances_by_series[series_id] = n
        counts.instances_by_study[study_id] = counts.instances_by_study.get(study_id, 0) + n
        modalities = counts.modalities.setdefault(study_id, [])
        if modality and modality not in modalities:
            modalities.append(str(modality))
    if not sop_classes:
        return counts
    for study_id, sop_class in connection.execute(
        select(ImagingSeries.study_id, ImagingInstance.sop_class_uid)
        .join(ImagingInstance, ImagingInstance.series_id == ImagingSeries.id)
        .where(ImagingSeries.study_id.in_(ids), accepted)
        .distinct()
    ):
        counts.sop_classes.setdefault(study_id, []).append(sop_class)
    return counts


def _counts_for(session: Session, query: _Query, rows: Sequence[Any]) -> _Counts:
    """Counts of the matched studies, read only when a return key needs them."""
    asked = {keyword for _, keyword in query.requested}
    sop_classes = "SOPClassesInStudy" in asked
    if not (sop_classes or asked & _COUNTED):
        return _Counts()
    return _counts(session, {row.st_id for row in rows}, sop_classes=sop_classes)


def _set(ds: Dataset, keyword_or_tag: str | int, value: Any) -> None:
    tag = Tag(keyword_or_tag)
    vr = dictionary_VR(tag)
    if vr == "SQ":
        ds.add(DataElement(tag, vr, []))
        return
    ds.add(DataElement(tag, vr, value if value != "" else None))


_SPECIFIC_CHARACTER_SET = 0x00080005


@dataclass(frozen=True, slots=True)
class Match:
    """One C-FIND / QIDO-RS match (PS3.4 C.4.1.1.3.2): each attribute asked for, by tag, in
    the order asked, as its DICOM value — text (DA and TM formatted), an integer, a list of
    either for several values, or "" when the archive holds none."""

    level: Level
    attributes: dict[int, Any]

    def value(self, keyword: str) -> Any:
        """The value of the attribute named by ``keyword``, "" when absent."""
        return self.attributes.get(int(Tag(keyword)), "")

    def dataset(self) -> Dataset:
        """The match as a C-FIND response identifier."""
        ds = Dataset()
        ds.QueryRetrieveLevel = str(self.level)
        for tag, value in self.attributes.items():
            _set(ds, tag, value)
        return ds


def _attributes(
    wanted: Sequence[tuple[int, str]], value_of: Callable[[str], Any]
) -> dict[int, Any]:
    attributes: dict[int, Any] = {}
    non_ascii = False
    for tag, keyword in wanted:
        value = _dicom_value(value_of(keyword))
        if isinstance(value, list):
            value = [v for v in value if v != ""] or ""
            non_ascii = non_ascii or any(isinstance(v, str) and not v.isascii() for v in value)
        elif isinstance(value, str):
            non_ascii = non_ascii or not value.isascii()
        attributes[tag] = value
    if non_ascii:
        # Values are held as Unicode; declare UTF-8 (PS3.5 6.1.2.5.3) only when it matters.
        attributes[_SPECIFIC_CHARACTER_SET] = "ISO_IR 192"
    return attributes


def search(
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    identifier: Dataset,
    *,
    now: dt.datetime,
    retrieve_ae_title: str = "",
    limit: int | None = None,
    offset: int = 0,
) -> list[Match]:
    """Match a query identifier against the studies ``principal`` may read.

    Implements the C-FIND SCP behaviour of PS3.4 C.4.1.3 for the Patient Root and Study
    Root models (the level comes from Query/Retrieve Level (0008,0052)), with single value,
    universal, wildcard, list-of-UID and range matching (C.2.2.2). Keys the index does not
    hold are returned empty. One SQL query finds and pages the matches, restricted to what
    the policy lets ``principal`` read; the search is audited. Raises `InvalidQuery` (A900)
    or `NotAuthorized` (0124).
    """
    level = _level_of(identifier)
    if not may_read_any(principal):
        raise NotAuthorized("this node or person may not query the archive")
    sqlite = session.get_bind().dialect.name == "sqlite"
    query = _parse_identifier(identifier, level, sqlite)
    matches: list[Match]
    if level is Level.PATIENT:
        # Patients gather several studies each, so they are paged once all are found.
        rows = _rows(session, principal, query, now)
        patients = _patient_matches(rows, query, _counts_for(session, query, rows))
        matches = patients[offset : None if limit is None else offset + limit]
    else:
        rows = _rows(session, principal, query, now, limit=limit, offset=offset)
        plan = _Plan(query, _counts_for(session, query, rows), retrieve_ae_title)
        matches = [plan.match(row) for row in rows]
    audit.record(
        session,
        actor,
        "study.query",
        "success",
        object_kind=STUDY_KIND,
        detail={
            "level": str(level),
            "matches": len(matches),
            "studies": sorted({row.st_study_instance_uid for row in rows})[:50],
        },
    )
    return matches


def find(
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    identifier: Dataset,
    *,
    now: dt.datetime,
    retrieve_ae_title: str = "",
    limit: int | None = None,
    offset: int = 0,
) -> list[Dataset]:
    """`search`, each match as a C-FIND response identifier (PS3.4 C.4.1.1.3.2)."""
    matches = search(
        session,
        principal,
        actor,
        identifier,
        now=now,
        retrieve_ae_title=retrieve_ae_title,
        limit=limit,
        offset=offset,
    )
    return [match.dataset() for match in matches]


def _level_of(identifier: Dataset) -> Level:
    raw = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    try:
        return Level(raw)
    except ValueError as exc:
        raise InvalidQuery(
            f"Query/Retrieve Level {raw!r} is not one of PATIENT, STUDY, SERIES, IMAGE"
        ) from exc


def _wanted(query: _Query) -> list[tuple[int, str]]:
    """Attributes each match returns: those asked for, then the unique keys down to the level."""
    wanted = list(query.requested)
    asked = {keyword for _, keyword in wanted}
    depth = _DEPTH[query.level]
    for lvl in (Level.STUDY, Level.SERIES, Level.IMAGE):
        unique = _UNIQUE_KEY[lvl]
        if _DEPTH[lvl] <= depth and unique not in asked:
            wanted.append((int(Tag(unique)), unique))
    return wanted


_Getter = Callable[[Any], Any]


def _listed(values: list[str]) -> Any:
    return sorted(v for v in values if v != "") or ""


class _Plan:
    """How each match of a study, series or instance query is made from its row: one
    getter per attribute, chosen once per query rather than once per row and attribute."""

    def __init__(self, query: _Query, counts: _Counts, retrieve_ae_title: str) -> None:
        self.level = query.level
        depth = _DEPTH[query.level]
        self.getters: list[tuple[int, _Getter]] = []
        self.texts: list[int] = []
        """Tags whose values may hold non-ASCII text."""
        for tag, keyword in _wanted(query):
            key = _KEYS.get(keyword)
            if key is not None and _DEPTH[key.level] <= depth:
                getter = self._column(keyword, key)
                if key.kind is _Kind.TEXT or key.kind is _Kind.PERSON_NAME:
                    self.texts.append(tag)
            else:
                getter = self._computed(keyword, depth, counts, retrieve_ae_title)
                if keyword == "ModalitiesInStudy":
                    self.texts.append(tag)
            self.getters.append((tag, getter))

    @staticmethod
    def _column(keyword: str, key: _Key) -> _Getter:
        get = operator.attrgetter(_LABELS[keyword])
        if key.kind is _Kind.DATE:
            return lambda row: _da(get(row))
        if key.kind is _Kind.TIME:
            return lambda row: _tm(get(row))

        def value(row: Any) -> Any:
            found = get(row)
            return "" if found is None else found

        return value

    @staticmethod
    def _computed(keyword: str, depth: int, counts: _Counts, retrieve_ae_title: str) -> _Getter:
        if keyword == "NumberOfStudyRelatedSeries":
            return lambda row: counts.series.get(row.st_id, 0)
        if keyword == "NumberOfStudyRelatedInstances":
            return lambda row: counts.instances_by_study.get(row.st_id, 0)
        if keyword == "ModalitiesInStudy":
            return lambda row: _listed(counts.modalities.get(row.st_id, []))
        if keyword == "SOPClassesInStudy":
            return lambda row: _listed(counts.sop_classes.get(row.st_id, []))
        if keyword == "NumberOfSeriesRelatedInstances" and depth >= _DEPTH[Level.SERIES]:
            return lambda row: counts.instances_by_series.get(row.se_id, 0)
        if keyword == "AvailableTransferSyntaxUID" and depth >= _DEPTH[Level.IMAGE]:
            return operator.attrgetter("in_transfer_syntax_uid")
        constant = {"RetrieveAETitle": retrieve_ae_title, "InstanceAvailability": "ONLINE"}.get(
            keyword, ""
        )
        return lambda _row: constant

    def match(self, row: Any) -> Match:
        attributes = {tag: get(row) for tag, get in self.getters}
        for tag in self.texts:
            if not _ascii(attributes[tag]):
                # Values are held as Unicode; declare UTF-8 (PS3.5 6.1.2.5.3) when it matters.
                attributes[_SPECIFIC_CHARACTER_SET] = "ISO_IR 192"
                break
        return Match(self.level, attributes)


def _ascii(value: Any) -> bool:
    if isinstance(value, list):
        return all(_ascii(v) for v in value)
    return not isinstance(value, str) or value.isascii()


def _patient_matches(rows: Sequence[Any], query: _Query, counts: _Counts) -> list[Match]:
    # Each hospital names its patients under its own Patient ID: one match per site and ID.
    groups: dict[tuple[int, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.st_site_id, row.st_dicom_patient_id), []).append(row)
    wanted = list(query.requested)
    if "PatientID" not in {k for _, k in wanted}:
        wanted.append((int(Tag("PatientID")), "PatientID"))
    matches = []
    for studies in groups.values():
        latest = max(studies, key=lambda s: (s.st_updated_at, s.st_id))
        computed = {
            "NumberOfPatientRelatedStudies": len(studies),
            "NumberOfPatientRelatedSeries": sum(counts.series.get(s.st_id, 0) for s in studies),
            "NumberOfPatientRelatedInstances": sum(
                counts.instances_by_study.get(s.st_id, 0) for s in studies
            ),
        }

        def value_of(keyword: str, latest: Any = latest, computed: Any = computed) -> Any:
            key = _KEYS.get(keyword)
            if key is not None and key.level is Level.PATIENT:
                return getattr(latest, _LABELS[keyword])
            return computed.get(keyword, "")

        matches.append(Match(Level.PATIENT, _attributes(wanted, value_of)))
    return matches


# --------------------------------------------------------------------------------------------
# C-MOVE / C-GET / WADO


@dataclass(frozen=True)
class RetrievableInstance:
    """One instance a retrieval will send, with what is needed to send it as stored."""

    study_instance_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    path: Path
    """The stored Part 10 file, sent byte for byte."""
    size: int = 0
    """Size of the stored file in bytes."""


def locate(
    archive: Archive,
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    identifier: Dataset,
    *,
    now: dt.datetime,
    destination: Principal | None = None,
    destination_title: str = "",
) -> list[RetrievableInstance]:
    """Instances a C-MOVE or C-GET identifier designates (PS3.4 C.4.2.2, C.4.3.2).

    The identifier must carry the unique key of its level (and may list several values).
    Each study must be readable by the requester and, for a C-MOVE, by the destination
    node too: images only go where the policy lets them be seen. One audit entry per study
    says how many of its instances went where. Raises `InvalidQuery` (A900) or
    `NotAuthorized` (0124).
    """
    level = _level_of(identifier)
    unique = _UNIQUE_KEY[level]
    if not _values(identifier.get(unique)) or any(
        _WILDCARDS & set(v) for v in _values(identifier.get(unique))
    ):
        raise InvalidQuery(f"a retrieval names the {unique} values it wants")
    if not may_read_any(principal):
        raise NotAuthorized("this node or person may not retrieve from the archive")
    sqlite = session.get_bind().dialect.name == "sqlite"
    query = _parse_identifier(identifier, Level.IMAGE, sqlite)
    query.level = Level.IMAGE
    rows = _rows(session, principal, query, now)
    studies: dict[int, Any] = {}
    instances: dict[int, int] = {}
    for row in rows:
        studies.setdefault(row.st_id, row)
        instances[row.st_id] = instances.get(row.st_id, 0) + 1
    # The rows are what the policy lets the requester read; it still has the last word on
    # each study, and says on what basis (role, share, emergency) for the audit trail.
    decisions: dict[int, Decision] = {}
    for study_id, row in studies.items():
        target = _target_of(
            session, row.st_study_instance_uid, row.st_site_id, row.st_patient_id, now
        )
        decisions[study_id] = decide(principal, ImagingAction.STUDY_READ, target)
        if destination is not None and decisions[study_id].allowed:
            decision = decide(destination, ImagingAction.STUDY_READ, target)
            if not decision.allowed:
                session.rollback()
                raise _refuse(
                    archive,
                    actor,
                    ImagingAction.STUDY_READ,
                    target,
                    Decision(False, f"destination {destination_title}: {decision.reason}"),
                )
    for study_id, row in studies.items():
        decision = decisions[study_id]
        if not decision.allowed:
            continue
        audit.record(
            session,
            actor,
            "study.retrieve",
            "emergency-override" if decision.emergency else "success",
            object_kind=STUDY_KIND,
            object_id=row.st_study_instance_uid,
            patient_id=row.st_patient_id,
            detail={
                "instances": instances[study_id],
                "destination": destination_title,
                "basis": decision.basis,
            },
        )
    path_of = archive.store.path_of
    return [
        RetrievableInstance(
            row.st_study_instance_uid,
            row.in_sop_class_uid,
            row.in_sop_instance_uid,
            row.in_transfer_syntax_uid,
            path_of(row.in_address),
            row.in_size,
        )
        for row in rows
        if decisions[row.st_id].allowed
    ]


# --------------------------------------------------------------------------------------------
# Removal and statistics


def delete_study(
    archive: Archive, principal: Principal, actor: audit.Actor, study_instance_uid: str
) -> int:
    """Remove a study from the index and its files from the store; returns instances removed.

    The index goes first, in one audited transaction; files follow, so a crash in between
    leaves only unindexed files, which `Archive.recover` removes.
    """
    now = archive.clock()
    with transaction(archive.sessions) as session:
        study, target = _authorised_study(
            archive, session, principal, actor, study_instance_uid, ImagingAction.STUDY_DELETE, now
        )
        addresses = list(
            session.execute(
                select(ImagingInstance.address)
                .join(ImagingSeries)
                .where(ImagingSeries.study_id == study.id)
            ).scalars()
        )
        series_ids = select(ImagingSeries.id).where(ImagingSeries.study_id == study.id)
        session.execute(delete(ImagingInstance).where(ImagingInstance.series_id.in_(series_ids)))
        session.execute(delete(ImagingSeries).where(ImagingSeries.study_id == study.id))
        session.execute(delete(ImagingStudy).where(ImagingStudy.id == study.id))
        audit.record(
            session,
            actor,
            str(ImagingAction.STUDY_DELETE),
            "success",
            object_kind=STUDY_KIND,
            object_id=study_instance_uid,
            patient_id=target.patient_id,
            detail={"instances": len(addresses)},
        )
    for address in addresses:
        archive.store.delete(address)
    archive.bus.publish("study.deleted", {"study_instance_uid": study_instance_uid})
    return len(addresses)


class RejectionReason(enum.StrEnum):
    """Why instances are withdrawn: code values of PS3.16 CID 7011 (Rejected Objects)."""

    QUALITY = "113001"
    """Rejected for Quality Reasons."""
    PATIENT_SAFETY = "113037"
    """Rejected for Patient Safety Reasons."""
    INCORRECT_WORKLIST_ENTRY = "113038"
    """Incorrect Modality Worklist Entry."""
    RETENTION_EXPIRED = "113039"
    """Data Retention Policy Expired."""


def reject(
    archive: Archive,
    principal: Principal,
    actor: audit.Actor,
    study_instance_uid: str,
    reason: RejectionReason,
    *,
    series_instance_uid: str | None = None,
) -> int:
    """Withdraw a study or one of its series from every query and retrieval; returns the
    number of instances rejected.

    The files stay until `delete_study` (IHE RAD TF-2 Imaging Object Change Management:
    rejection first, deletion by retention policy later), and the action is audited.
    """
    now = archive.clock()
    with transaction(archive.sessions) as session:
        study, target = _authorised_study(
            archive, session, principal, actor, study_instance_uid, ImagingAction.STUDY_DELETE, now
        )
        series = select(ImagingSeries.id).where(ImagingSeries.study_id == study.id)
        if series_instance_uid is not None:
            series = series.where(ImagingSeries.series_instance_uid == series_instance_uid)
        instances = (
            session.execute(
                select(ImagingInstance).where(
                    ImagingInstance.series_id.in_(series), ImagingInstance.rejected_at.is_(None)
                )
            )
            .scalars()
            .all()
        )
        if series_instance_uid is not None and not instances:
            raise NotFound(f"no accepted instance in series {series_instance_uid}")
        for instance in instances:
            instance.rejected_at = now
            instance.rejection_reason = str(reason)
        audit.record(
            session,
            actor,
            "study.reject",
            "success",
            object_kind=STUDY_KIND,
            object_id=study_instance_uid,
            patient_id=target.patient_id,
            detail={
                "series": series_instance_uid,
                "reason": str(reason),
                "instances": len(instances),
            },
        )
    return len(instances)


@dataclass(frozen=True)
class ArchiveStatistics:
    """Totals of the index."""

    studies: int
    series: int
    instances: int
    bytes: int
    """Sum of the stored sizes of indexed instances."""


def statistics(session: Session, site_id: int | None = None) -> ArchiveStatistics:
    """Counts and volume, for one site or the whole archive."""
    studies = select(func.count(ImagingStudy.id))
    series = select(func.count(ImagingSeries.id)).join(ImagingStudy)
    instances = (
        select(func.count(ImagingInstance.id), func.coalesce(func.sum(ImagingInstance.size), 0))
        .select_from(ImagingInstance)
        .join(ImagingSeries)
        .join(ImagingStudy)
    )
    if site_id is not None:
        studies = studies.where(ImagingStudy.site_id == site_id)
        series = series.where(ImagingStudy.site_id == site_id)
        instances = instances.where(ImagingStudy.site_id == site_id)
    count, size = session.execute(instances).one()
    return ArchiveStatistics(
        studies=session.execute(studies).scalar_one(),
        series=session.execute(series).scalar_one(),
        instances=int(count),
        bytes=int(size),
    )


# --------------------------------------------------------------------------------------------
# Remote application entities (PS3.8 7)


def _check_ae_title(title: str) -> str:
    # PS3.5 6.2 AE: 16 characters of the default repertoire, no backslash or control codes;
    # leading and trailing spaces are insignificant.
    stripped = title.strip()
    if not stripped or not _AE_TITLE.fullmatch(stripped):
        raise InvalidInput("AE title: 1-16 printable characters, no backslash")
    return stripped


def add_remote_ae(
    session: Session,
    actor: audit.Actor,
    *,
    ae_title: str,
    host: str,
    port: int,
    site_id: int,
    allow_store: bool = True,
    allow_query: bool = False,
    allow_move_destination: bool = False,
    description: str = "",
    tls: bool = False,
) -> RemoteApplicationEntity:
    """Register a node of a site; it then acts for that site (see `peer_principal`)."""
    title = _check_ae_title(ae_title)
    if not host.strip() or len(host) > 255:
        raise InvalidInput("host: a name or an address")
    if not 1 <= port <= 65535:
        raise InvalidInput("port: 1-65535")
    if remote_ae(session, title) is not None:
        raise Conflict(f"AE title {title} is already registered")
    ae = RemoteApplicationEntity(
        ae_title=title,
        host=host.strip(),
        port=port,
        site_id=site_id,
        description=description.strip()[:200],
        allow_store=allow_store,
        allow_query=allow_query,
        allow_move_destination=allow_move_destination,
        tls=tls,
    )
    session.add(ae)
    session.flush()
    audit.record(
        session,
        actor,
        str(ImagingAction.AE_MANAGE),
        "success",
        object_kind="ae",
        object_id=title,
        site_id=site_id,
        detail={
            "host": ae.host,
            "port": port,
            "store": allow_store,
            "query": allow_query,
            "move_destination": allow_move_destination,
            "tls": tls,
        },
    )
    return ae


def set_remote_ae_tls(
    session: Session, actor: audit.Actor, ae_title: str, tls: bool
) -> RemoteApplicationEntity:
    """Call a registered node over TLS from now on, or over plain TCP again (audited)."""
    ae = remote_ae(session, ae_title)
    if ae is None:
        raise NotFound(f"no AE title {ae_title!r}")
    ae.tls = tls
    audit.record(
        session,
        actor,
        str(ImagingAction.AE_MANAGE),
        "success",
        object_kind="ae",
        object_id=ae.ae_title,
        site_id=ae.site_id,
        detail={"tls": tls},
    )
    return ae


def remote_ae(session: Session, ae_title: str) -> RemoteApplicationEntity | None:
    """The registered node with this AE title (trailing spaces are insignificant)."""
    return session.execute(
        select(RemoteApplicationEntity).where(RemoteApplicationEntity.ae_title == ae_title.strip())
    ).scalar_one_or_none()


def list_remote_aes(
    session: Session, site_ids: frozenset[int] | None = None
) -> Sequence[RemoteApplicationEntity]:
    statement = select(RemoteApplicationEntity).order_by(RemoteApplicationEntity.ae_title)
    if site_ids is not None:
        statement = statement.where(RemoteApplicationEntity.site_id.in_(site_ids))
    return session.execute(statement).scalars().all()


def remove_remote_ae(session: Session, actor: audit.Actor, ae_title: str) -> None:
    ae = remote_ae(session, ae_title)
    if ae is None:
        raise NotFound(f"no AE title {ae_title!r}")
    session.delete(ae)
    audit.record(
        session,
        actor,
        str(ImagingAction.AE_MANAGE),
        "success",
        object_kind="ae",
        object_id=ae.ae_title,
        site_id=ae.site_id,
        detail={"removed": True},
    )


# --------------------------------------------------------------------------------------------
# Study pages, exports and teaching files


def study_by_uid(session: Session, study_instance_uid: str) -> ImagingStudy | None:
    """The indexed study with this Study Instance UID (no access decision: see `study_target`)."""
    return _get_study(session, study_instance_uid)


@dataclass(frozen=True)
class StoredInstance:
    """Where one indexed instance sits in the store, and where an export puts it."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    address: str

    @property
    def export_path(self) -> str:
        """``<study>/<series>/<instance>.dcm``: the layout of every export of the archive."""
        return export_path(self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid)


def export_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Relative path of an exported instance, so that exports of one study sort together."""
    return f"{study_uid}/{series_uid}/{sop_uid}.dcm"


def stored_instances(
    session: Session, study_instance_uid: str | None = None, *, accepted_only: bool = False
) -> list[StoredInstance]:
    """Indexed instances (of one study, or all), in study, series and arrival order.

    ``accepted_only`` leaves out rejected instances, as every reader sees the study.
    """
    statement = (
        select(
            ImagingStudy.study_instance_uid,
            ImagingSeries.series_instance_uid,
            ImagingInstance.sop_instance_uid,
            ImagingInstance.address,
        )
        .join(ImagingSeries, ImagingSeries.study_id == ImagingStudy.id)
        .join(ImagingInstance, ImagingInstance.series_id == ImagingSeries.id)
        .order_by(ImagingStudy.id, ImagingSeries.id, ImagingInstance.id)
    )
    if study_instance_uid is not None:
        statement = statement.where(ImagingStudy.study_instance_uid == study_instance_uid)
    if accepted_only:
        statement = statement.where(ImagingInstance.rejected_at.is_(None))
    return [StoredInstance(*row) for row in session.execute(statement).all()]


def write_teaching_export(
    archive: Archive,
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    study_instance_uid: str,
    out: IO[bytes],
    *,
    temporal: TemporalOption,
    salt: bytes,
) -> int:
    """Write a ZIP of the study de-identified by the PS3.15 E.2 basic profile; returns the
    number of instances written.

    One salt for the whole study, so every UID and reference is remapped the same way in
    every object (E.3.9 is not claimed: no UID is retained). An instance that cannot be
    de-identified safely (identifying text burned into its pixels) refuses the export
    whole: a teaching file with a hole in it would be misread. Audited as ``study.export``.
    """
    study, target = _authorised_study(
        archive,
        session,
        principal,
        actor,
        study_instance_uid,
        ImagingAction.STUDY_READ,
        archive.clock(),
    )
    options = DeidentificationOptions(salt=salt, temporal=temporal)
    instances = stored_instances(session, study_instance_uid, accepted_only=True)
    if not instances:
        raise NotFound(f"study {study_instance_uid} has no accepted instance")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for item in instances:
            ds = dcmread(archive.store.path_of(item.address))
            try:
                clean = deidentify(ds, options)
            except DeidentificationError as exc:
                raise InvalidInput(f"instance {item.sop_instance_uid}: {exc}") from exc
            buffer = io.BytesIO()
            clean.save_as(buffer, enforce_file_format=True)
            name = export_path(
                str(clean.StudyInstanceUID), str(clean.SeriesInstanceUID), str(clean.SOPInstanceUID)
            )
            zf.writestr(name, buffer.getvalue())
    audit.record(
        session,
        actor,
        "study.export",
        "success",
        object_kind=STUDY_KIND,
        object_id=study.study_instance_uid,
        patient_id=target.patient_id,
        detail={
            "profile": "PS3.15 E.2 basic",
            "temporal": temporal.value,
            "instances": len(instances),
        },
    )
    return len(instances)
