"""The archive's domain functions under their former single module's name.

Each lives in the module of the concept it implements (`archive`, `ingest`, `matching`,
`query`, `retrieve`, `lifecycle`, `nodes`, `export`, `access`); other services reach them
through `concilium.imaging`. This module only re-exports them for callers that still import
``concilium.imaging.service``.
"""

from __future__ import annotations

from concilium.imaging.access import STUDY_KIND, NotAuthorized, study_target
from concilium.imaging.archive import (
    Archive,
    ArchiveStatistics,
    DuplicatePolicy,
    statistics,
    study_by_uid,
)
from concilium.imaging.export import (
    StoredInstance,
    export_path,
    stored_instances,
    write_teaching_export,
)
from concilium.imaging.ingest import (
    IngestOutcome,
    IngestResult,
    InvalidInstanceInStudy,
    ReceivedInstance,
    Sender,
    ingest_batch,
    ingest_instance,
    receive_files,
)
from concilium.imaging.lifecycle import RejectionReason, delete_study, reject
from concilium.imaging.matching import InvalidQuery, Level
from concilium.imaging.nodes import (
    DEVICE_ROLE,
    add_remote_ae,
    list_remote_aes,
    peer_actor,
    peer_principal,
    remote_ae,
    remove_remote_ae,
    set_remote_ae_tls,
)
from concilium.imaging.query import Match, find, search
from concilium.imaging.retrieve import RetrievableInstance, locate

ingest = ingest_instance
"""The former name of `concilium.imaging.ingest.ingest_instance`."""

__all__ = [
    "DEVICE_ROLE",
    "STUDY_KIND",
    "Archive",
    "ArchiveStatistics",
    "DuplicatePolicy",
    "IngestOutcome",
    "IngestResult",
    "InvalidInstanceInStudy",
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
    "peer_actor",
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
