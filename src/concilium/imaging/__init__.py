"""Imaging: the image archive — store, index, DICOMweb, DIMSE, render, de-identify, share.

What other services and the process assembly may use of it, and nothing more:

- the archive of a process (`Archive`, built once with its store, database and bus, held by
  the process's `ImagingProcess`) and the
  topics it publishes, `STUDY_RECEIVED` (payload: ``study_instance_uid``,
  ``series_instance_uid``, ``sop_instance_uid``, ``site_id``, ``accession_number``,
  ``modality``) and `STUDY_DELETED` (``study_instance_uid``);
- receiving an instance (`ingest_instance`, on behalf of a `Sender`);
- finding studies: by the C-FIND/QIDO-RS search (`search`, identifiers at a `Level`), or the
  studies of a platform patient (`patient_studies`); one study by its UID (`study_by_uid`),
  and the facts the policy needs to decide about it (`study_target`, with the
  `ImagingAction` actions);
- the instances a retrieval sends (`locate`, each a `RetrievableInstance`);
- the frames of an object as pictures (`render_frame`, `number_of_frames`, `RenderError`);
- the built-in viewer embedded in another service's page: the template
  ``imaging/_viewer.html`` with the `WINDOW_PRESETS` it offers, and the exports of
  ``/static/imaging/viewer.js`` (``currentView``, ``applyView``, ``onViewChange``);
- the errors they raise: `NotAuthorized` (the policy refused) and `InvalidQuery`;
- serving another service's SOP classes on the archive's DICOM listener
  (`ImagingProcess.add_dimse_service` with a `DimseExtension`, its handlers called with a
  `FindRequest` or the `CallingNode` and answering `NResult`);
- the attribute matching of PS3.4 C.2.2.2 for C-FIND providers that match in memory
  (`value_matches`, `datetime_range_matches`, `kind_of_vr`, `KeyKind`, `values_of`).

Inside the package each module implements one concept of the standard: `archive`, `ingest`
(PS3.4 B.2.2), `matching` (PS3.4 C.2.2.2), `query` (C.4.1), `retrieve` (C.4.2, C.4.3),
`lifecycle` (IHE IOCM), `nodes` (PS3.8 application entities), `export` (PS3.15 E.2), `access`
(the policy's facts), with the protocol adapters `dimse` (and its `status` table) and the
`dicomweb` package (PS3.18).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from concilium.platform.services import public_face

if TYPE_CHECKING:
    from concilium.imaging.access import STUDY_KIND, NotAuthorized, study_target
    from concilium.imaging.actions import ImagingAction
    from concilium.imaging.archive import (
        STUDY_DELETED,
        STUDY_RECEIVED,
        Archive,
        DuplicatePolicy,
        study_by_uid,
    )
    from concilium.imaging.dimse_services import (
        CallingNode,
        DimseExtension,
        FindRequest,
        NResult,
    )
    from concilium.imaging.ingest import IngestOutcome, IngestResult, Sender, ingest_instance
    from concilium.imaging.matching import InvalidQuery, Level
    from concilium.imaging.process import ImagingProcess
    from concilium.imaging.query import PATIENT_STUDY_KEYS, Match, patient_studies, search
    from concilium.imaging.render import RenderError, number_of_frames, render_frame
    from concilium.imaging.retrieve import RetrievableInstance, locate
    from concilium.imaging.value_matching import (
        KeyKind,
        datetime_range_matches,
        kind_of_vr,
        value_matches,
        values_of,
    )
    from concilium.imaging.windows import WINDOW_PRESETS

__all__ = [
    "PATIENT_STUDY_KEYS",
    "STUDY_DELETED",
    "STUDY_KIND",
    "STUDY_RECEIVED",
    "WINDOW_PRESETS",
    "Archive",
    "CallingNode",
    "DimseExtension",
    "DuplicatePolicy",
    "FindRequest",
    "ImagingAction",
    "ImagingProcess",
    "IngestOutcome",
    "IngestResult",
    "InvalidQuery",
    "KeyKind",
    "Level",
    "Match",
    "NResult",
    "NotAuthorized",
    "RenderError",
    "RetrievableInstance",
    "Sender",
    "datetime_range_matches",
    "ingest_instance",
    "kind_of_vr",
    "locate",
    "number_of_frames",
    "patient_studies",
    "render_frame",
    "search",
    "study_by_uid",
    "study_target",
    "value_matches",
    "values_of",
]
_MODULE_OF = {
    "ImagingAction": "concilium.imaging.actions",
    "render_frame": "concilium.imaging.render",
    "number_of_frames": "concilium.imaging.render",
    "RenderError": "concilium.imaging.render",
    "PATIENT_STUDY_KEYS": "concilium.imaging.query",
    "STUDY_DELETED": "concilium.imaging.archive",
    "STUDY_KIND": "concilium.imaging.access",
    "STUDY_RECEIVED": "concilium.imaging.archive",
    "Archive": "concilium.imaging.archive",
    "CallingNode": "concilium.imaging.dimse_services",
    "DimseExtension": "concilium.imaging.dimse_services",
    "FindRequest": "concilium.imaging.dimse_services",
    "NResult": "concilium.imaging.dimse_services",
    "KeyKind": "concilium.imaging.value_matching",
    "datetime_range_matches": "concilium.imaging.value_matching",
    "kind_of_vr": "concilium.imaging.value_matching",
    "value_matches": "concilium.imaging.value_matching",
    "values_of": "concilium.imaging.value_matching",
    "DuplicatePolicy": "concilium.imaging.archive",
    "ImagingProcess": "concilium.imaging.process",
    "IngestOutcome": "concilium.imaging.ingest",
    "IngestResult": "concilium.imaging.ingest",
    "InvalidQuery": "concilium.imaging.matching",
    "Level": "concilium.imaging.matching",
    "Match": "concilium.imaging.query",
    "NotAuthorized": "concilium.imaging.access",
    "RetrievableInstance": "concilium.imaging.retrieve",
    "Sender": "concilium.imaging.ingest",
    "ingest_instance": "concilium.imaging.ingest",
    "locate": "concilium.imaging.retrieve",
    "patient_studies": "concilium.imaging.query",
    "search": "concilium.imaging.query",
    "study_by_uid": "concilium.imaging.archive",
    "study_target": "concilium.imaging.access",
    "WINDOW_PRESETS": "concilium.imaging.windows",
}
"""The module each name of the public face comes from."""


__getattr__ = public_face(__name__, _MODULE_OF)
