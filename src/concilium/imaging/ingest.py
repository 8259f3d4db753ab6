"""Receiving instances: the Storage SCP behaviour of PS3.4 B.2.2, for C-STORE and STOW-RS
(PS3.18 10.5) alike, through one pipeline.

A C-STORE (`ingest_instance`) is a batch of one; the parts of a STOW-RS request
(`receive_files`) are one batch; `ingest_batch` makes either part of the archive. One order,
so that an acknowledged instance is never lost and a refused one leaves nothing behind:
stage the bytes (fsynced, hashed as they are written) → validate, reading the header once →
commit them to the store (fsynced renames, each directory synced once per batch) → index
them in one database transaction (one multi-row INSERT per study) with one audit entry per
study of the batch → publish ``study.received`` for each instance stored → return, and only
then does the adapter answer success. Each file is recorded as a pending write of the
process before it enters the store, and the transaction indexing it removes the record: a
crash in between leaves the record, which recovery resolves (`concilium.imaging.writers`).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from concilium.imaging.access import (
    STUDY_KIND,
    NotAuthorized,
    new_study_target,
    study_target,
)
from concilium.imaging.actions import ImagingAction
from concilium.imaging.archive import STUDY_RECEIVED, Archive, DuplicatePolicy, study_by_uid
from concilium.imaging.parsing import (
    FailureReason,
    Identification,
    IndexRecord,
    InvalidInstance,
    failure_reason,
    parse_instance,
)
from concilium.imaging.storage import StagedObject, StoredObject
from concilium.imaging.tables import ImagingInstance, ImagingSeries, ImagingStudy
from concilium.imaging.writers import WriterFenced
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.patients import find_by_identifier
from concilium.platform.policy import Decision, Principal, Target, decide

__all__ = [
    "IngestOutcome",
    "IngestResult",
    "InvalidInstanceInStudy",
    "NotKept",
    "ReceivedInstance",
    "Sender",
    "ingest_batch",
    "ingest_instance",
    "receive_files",
    "receiving_area",
]

log = logging.getLogger(__name__)


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


class IngestOutcome(enum.StrEnum):
    """What the archive did with a received instance; every outcome is acknowledged as a success."""

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


def ingest_instance(archive: Archive, sender: Sender, chunks: Iterable[bytes]) -> IngestResult:
    """Receive one Part 10 object (PS3.10 7.1), a C-STORE's or a file's, and make it part of
    the archive: a batch of one, through `ingest_batch` as any other.

    Returns only once the instance is durable, indexed and audited. Raises an
    `InvalidInstance` subclass (validation, `NotAuthorized`) or a storage error; in every
    failure case nothing of the object remains in the store or the index.
    """
    staged = archive.store.stage_iter(chunks)
    with staged:
        record = parse_instance(staged.path).record
        (result,) = ingest_batch(archive, sender, [ReceivedInstance(staged, record)])
    if isinstance(result, Exception):
        raise result
    return result


def _announce(archive: Archive, sender: Sender, result: IngestResult, record: IndexRecord) -> None:
    if result.outcome in (IngestOutcome.STORED, IngestOutcome.REPLACED):
        archive.bus.publish(
            STUDY_RECEIVED,
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


def receiving_area(archive: Archive) -> Path:
    """Where a transport writes the objects it receives before `receive_files` takes them (the
    parts of a STOW-RS body): on the store's filesystem, so that committing them is a rename.
    """
    return archive.store.temporary_area


class NotKept(InvalidInstance):
    """A valid object whose bytes the store could not keep (disk full, I/O error)."""

    def __init__(self, cause: Exception, identification: Identification) -> None:
        super().__init__(str(cause))
        self.reason = failure_reason(cause)
        self.identification = identification


def receive_files(
    archive: Archive, files: Sequence[tuple[Path, str | None]]
) -> list[ReceivedInstance | Exception]:
    """Validate Part 10 files written to the store's temporary area (e.g. the parts of a
    STOW-RS request) and sync their bytes where they are.

    Each file comes with the SHA-256 its writer computed as it wrote it, or None to have it
    read again. Returns, in order, each file's `ReceivedInstance` or the exception that
    refuses it (an `InvalidInstance` subclass, whose `identification` names the object as far as
    it could be read; `NotKept` for bytes the store could not sync); a refused file stays the
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
            results[index] = NotKept(exc, Identification.of(record))
    return results


def ingest_batch(
    archive: Archive, sender: Sender, received: Sequence[ReceivedInstance]
) -> list[IngestResult | Exception]:
    """Make received instances (e.g. the parts of one STOW-RS request) part of the archive
    as one batch; their staged files are consumed.

    The files are recorded as pending writes of the process (one committed INSERT), then
    committed to the store together (`InstanceStore.commit_all`: renamed, each directory
    synced once), then indexed in one transaction with one audit entry per study
    (`_index_batch`), which also removes the pending writes of the files now indexed; an
    instance refused or failing leaves no row and does not stop the others. Returns, in
    order, each instance's result or exception, once every stored instance is durable and
    indexed. Files no row names afterwards (refused, kept duplicates, replaced bytes) are
    removed while still pending, so a crash at any point leaves only pending writes.
    """
    writer = archive.writer
    addresses = [item.staged.address for item in received]
    try:
        seqs = writer.begin(addresses)
    except BaseException as exc:
        for item in received:
            item.staged.discard()
        if isinstance(exc, WriterFenced):
            return [exc for _ in received]
        raise
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
            in_use = {r.address for r in indexed if isinstance(r, IngestResult)}
            settled = [
                seq for seq, address in zip(seqs, addresses, strict=True) if address in in_use
            ]
            writer.settle(session, settled)
            # The bytes a replacement made obsolete leave the index now: pending from this
            # very transaction, so that they are removed even if the process dies next.
            leaving = list(zip(writer.journal(session, obsolete), obsolete, strict=True))
    except BaseException as exc:
        try:
            writer.forget(list(zip(seqs, addresses, strict=True)))
        except Exception:
            log.exception("files of a failed batch stay pending, for recovery")
        if isinstance(exc, WriterFenced):
            # Another process took this one's pending writes over: nothing of the batch is
            # acknowledged, each instance is answered as a processing failure.
            return [exc for _ in received]
        raise
    for i, outcome in zip(stored, indexed, strict=True):
        results[i] = outcome
    settled_set = set(settled)
    writer.forget(
        [
            (seq, address)
            for seq, address in zip(seqs, addresses, strict=True)
            if seq not in settled_set
        ]
        + leaving
    )
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
        study = study_by_uid(session, study_uid)
        target = (
            study_target(session, study, now)
            if study is not None
            else new_study_target(sender.site_id, study_uid)
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
            if isinstance(outcome, IngestResult) and study is not None:
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
) -> tuple[ImagingStudy | None, dict[int, IngestResult | Exception]]:
    """Index instances of one study, none of them indexed yet, with one multi-row INSERT;
    returns the study (None if it is not indexed and none of them created it) and each
    instance's outcome.

    Runs under the caller's savepoint: an error leaves nothing. An instance whose series
    belongs to another study is answered with `InvalidInstanceInStudy` and not inserted.
    """
    series_by_uid: dict[str, ImagingSeries | InvalidInstance] = {}
    outcomes: dict[int, IngestResult | Exception] = {}
    rows: list[dict[str, Any]] = []
    if study is None:
        # A study not indexed yet has no series: those of the batch found indexed in
        # another study are refused first, so that no study is created without an instance
        # in it. (Series found in this very study were indexed meanwhile by another
        # association creating it: `_create_study` then finds that study.)
        wanted = {items[i][0].series.series_instance_uid for i in indexes}
        study_uid = items[indexes[0]][0].study.study_instance_uid
        elsewhere: dict[str, InvalidInstance] = {
            uid: InvalidInstanceInStudy(uid)
            for uid in session.execute(
                select(ImagingSeries.series_instance_uid)
                .join(ImagingStudy, ImagingSeries.study_id == ImagingStudy.id)
                .where(
                    ImagingSeries.series_instance_uid.in_(sorted(wanted)),
                    ImagingStudy.study_instance_uid != study_uid,
                )
            ).scalars()
        }
        series_by_uid.update(elsewhere)
        first = next(
            (i for i in indexes if items[i][0].series.series_instance_uid not in elsewhere), None
        )
        if first is None:
            return None, {i: elsewhere[items[i][0].series.series_instance_uid] for i in indexes}
        study = _create_study(session, sender.site_id, items[first][0])
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
    study = study_by_uid(session, record.study.study_instance_uid)
    target = (
        study_target(session, study, now)
        if study is not None
        else new_study_target(sender.site_id, record.study.study_instance_uid)
    )
    decision = decide(sender.principal, ImagingAction.STUDY_STORE, target)
    if not decision.allowed:
        raise _Refusal(target, decision)
    if existing is not None:
        # A SOP Instance UID already indexed belongs to the study it is in: only who may
        # store into that study may touch it (keep, replace) or learn where it is. Another
        # site's duplicate is refused like any store it may not do, naming nothing of it.
        owner = existing.series.study
        if owner.study_instance_uid != target.id:
            held = study_target(session, owner, now)
            decision = decide(sender.principal, ImagingAction.STUDY_STORE, held)
            if not decision.allowed:
                raise _Refusal(held, decision)
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
        found = study_by_uid(session, s.study_instance_uid)
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
