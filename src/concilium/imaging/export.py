"""Stored instances as files: the layout of every export, and teaching files de-identified
by the Basic Application Level Confidentiality Profile (PS3.15 E.2)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import IO

from pydicom import dcmread
from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.imaging.access import STUDY_KIND, authorised_study
from concilium.imaging.actions import ImagingAction
from concilium.imaging.archive import Archive
from concilium.imaging.deidentify import (
    DeidentificationError,
    DeidentificationOptions,
    TemporalOption,
    deidentify,
)
from concilium.imaging.tables import ImagingInstance, ImagingSeries, ImagingStudy
from concilium.platform import audit
from concilium.platform.errors import InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Principal

__all__ = [
    "StoredInstance",
    "export_path",
    "stored_instances",
    "write_teaching_export",
]


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
    study, target = authorised_study(
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
        raise NotFound(
            _("study %(study_instance_uid)s has no accepted instance")
            % {"study_instance_uid": study_instance_uid}
        )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for item in instances:
            ds = dcmread(archive.store.path_of(item.address))
            try:
                clean = deidentify(ds, options)
            except DeidentificationError as exc:
                raise InvalidInput(
                    _("instance %(sop_instance_uid)s: %(exc)s")
                    % {"sop_instance_uid": item.sop_instance_uid, "exc": exc}
                ) from exc
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
