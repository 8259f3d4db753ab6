"""What a case brings to the board besides its summary: the documents the referring physician
attaches (PDF, PNG or JPEG, recognised from their bytes, kept in the database in the same
transaction as the case and its audit entry) and the patient's studies in the archive,
chosen through imaging's public face among those the physician may read.

Only a draft takes or loses a document or a study; each change is audited with the patient
(:func:`concilium.boards.case_store.audit_case`), naming the document by its id, kind, size
and digest, never by its file name.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concilium import imaging
from concilium.boards.actions import BoardAction
from concilium.boards.case_store import audit_case, check_editable, get_document
from concilium.boards.tables import BoardCase, BoardCaseDocument, BoardCaseStudy
from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.i18n import N_, _
from concilium.platform.policy import Principal

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
"""Largest document attached to a case."""
MAX_DOCUMENTS = 30
DOCUMENT_KINDS: dict[str, str] = {
    "pathology_report": N_("Pathology report"),
    "imaging_report": N_("Imaging report"),
    "letter": N_("Letter or consultation report"),
    "biology": N_("Laboratory results"),
    "other": N_("Other document"),
}
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\\"]+")


def sniff(data: bytes) -> str | None:
    """The media type the bytes are (PDF, PNG, JPEG), None for anything else."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    return None


def clean_filename(name: str, media_type: str) -> str:
    """A file name safe to store and to offer back for download."""
    base = _UNSAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    if not base:
        extension = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
        return "document" + extension[media_type]
    return base[:150]


def add_document(
    session: Session,
    actor: audit.Actor,
    case: BoardCase,
    kind: str,
    filename: str,
    data: bytes,
    now: datetime,
) -> BoardCaseDocument:
    """Attach a document (PDF, PNG or JPEG, at most :data:`MAX_DOCUMENT_BYTES`) to a draft."""
    check_editable(case)
    if kind not in DOCUMENT_KINDS:
        raise InvalidInput(_("Choose what kind of document it is."))
    if not data:
        raise InvalidInput(_("Choose a file to attach: it is empty or missing."))
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            _("A document is at most %(n)d MB.") % {"n": MAX_DOCUMENT_BYTES // (1024 * 1024)}
        )
    media_type = sniff(data)
    if media_type is None:
        raise InvalidInput(_("Attach a PDF, PNG or JPEG file."))
    count = session.scalar(
        select(func.count(BoardCaseDocument.id)).where(BoardCaseDocument.case_id == case.id)
    )
    if (count or 0) >= MAX_DOCUMENTS:
        raise InvalidInput(_("A case has at most %(n)d documents.") % {"n": MAX_DOCUMENTS})
    document = BoardCaseDocument(
        case_id=case.id,
        kind=kind,
        filename=clean_filename(filename, media_type),
        media_type=media_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content=data,
        added_by_id=actor.user_id,
        added_at=now,
    )
    session.add(document)
    case.updated_at = now
    session.flush()
    audit_case(
        session,
        actor,
        str(BoardAction.CASE_EDIT),
        case,
        "document added",
        {"document": document.id, "kind": kind, "size": len(data), "sha256": document.sha256},
    )
    return document


def remove_document(
    session: Session, actor: audit.Actor, case: BoardCase, document_id: int, now: datetime
) -> None:
    """Take a document off a draft."""
    check_editable(case)
    document = get_document(session, case, document_id)
    session.delete(document)
    case.updated_at = now
    session.flush()
    audit_case(
        session,
        actor,
        str(BoardAction.CASE_EDIT),
        case,
        "document removed",
        {"document": document_id},
    )


def patient_studies(
    session: Session, principal: Principal, actor: audit.Actor, case: BoardCase, now: datetime
) -> list[imaging.Match]:
    """The patient's studies in the archive that ``principal`` may read (none when they may
    read none), through imaging's public face, which audits the lookup."""
    try:
        return imaging.patient_studies(session, principal, actor, case.patient_id, now=now)
    except imaging.NotAuthorized:
        return []


def _text(value: Any, limit: int) -> str:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return str(value or "")[:limit]


def attach_study(
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    case: BoardCase,
    study_instance_uid: str,
    now: datetime,
) -> BoardCaseStudy:
    """Attach to a draft one of the patient's studies that ``principal`` may read."""
    check_editable(case)
    uid = study_instance_uid.strip()
    found = [
        match
        for match in patient_studies(session, principal, actor, case, now)
        if str(match.value("StudyInstanceUID")) == uid
    ]
    if not uid or not found:
        raise InvalidInput(_("Choose one of the patient's studies in the archive."))
    exists = session.scalar(
        select(BoardCaseStudy.id).where(
            BoardCaseStudy.case_id == case.id, BoardCaseStudy.study_instance_uid == uid
        )
    )
    if exists is not None:
        raise Conflict(_("This study is attached to the case already."))
    match = found[0]
    study = BoardCaseStudy(
        case_id=case.id,
        study_instance_uid=uid,
        study_date=_text(match.value("StudyDate"), 8),
        description=_text(match.value("StudyDescription"), 200),
        modalities=_text(match.value("ModalitiesInStudy"), 64),
        added_at=now,
    )
    session.add(study)
    case.updated_at = now
    session.flush()
    audit_case(session, actor, str(BoardAction.CASE_EDIT), case, "study attached", {"study": uid})
    return study
