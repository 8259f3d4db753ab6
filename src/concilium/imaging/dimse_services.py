"""DIMSE services other services add to the archive's DICOM listener.

The archive listens on one DICOM port (PS3.8: one AE title, one port per installation); a
service with its own DICOM SOP classes — the modality worklist (PS3.4 K.6) and Modality
Performed Procedure Step (PS3.4 F) of teleradiology — gives the archive a `DimseExtension`
before the listener starts (`ImagingProcess.add_dimse_service`). The listener negotiates the
extension's SOP classes, admits the association as for its own services (a registered node,
from its network identity: `DicomServer._admit`) and calls the extension's handlers with the
`CallingNode`: who called, for which site. What a handler raises becomes a DIMSE status:
`InvalidQuery` A900 and `NotAuthorized` 0124 for a C-FIND, anything else C001 (C-FIND) or
0110 (N-CREATE, N-SET), logged without the request's content.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from concilium.platform import audit
from concilium.platform.policy import Principal

__all__ = [
    "CallingNode",
    "DimseExtension",
    "FindRequest",
    "NResult",
]


@dataclass(frozen=True)
class CallingNode:
    """The registered node an association comes from, admitted by the archive."""

    ae_title: str
    site_id: int
    """The site the node is registered for: what it may see and change is that site's."""
    address: str
    allow_store: bool
    allow_query: bool
    principal: Principal
    """The principal the node acts as (see `nodes.peer_principal`)."""
    actor: audit.Actor
    """How the node appears in the audit trail."""


@dataclass(frozen=True)
class FindRequest:
    """A C-FIND request of an extension's SOP class."""

    caller: CallingNode
    identifier: Dataset
    extended_negotiation: bytes = b""
    """The service class application information agreed on the association for the SOP
    class (PS3.7 D.3.3.3), empty when none was."""


@dataclass(frozen=True)
class NResult:
    """The answer to an N-CREATE or N-SET (PS3.7 10.1.5.1, 10.1.3.1)."""

    status: int
    attributes: Dataset | None = None
    """The response's Attribute List (on success or warning)."""
    affected_sop_instance_uid: str = ""
    """For an N-CREATE whose request named no instance: the UID the SCP gave it."""
    error_comment: str = ""
    """Error Comment (0000,0902), 64 characters at most, no patient data."""
    attribute_identifiers: tuple[int, ...] = ()
    """Attribute Identifier List (0000,1005): tags of the attributes at fault (PS3.7 C.4:
    no such attribute, invalid value, value out of range, missing attribute); sent with an
    N-SET response only, pynetdicom's N-CREATE response having no such field: the error
    comment should name them too."""
    error_id: int | None = None
    """Error ID (0000,0903), e.g. A710 "Performed Procedure Step Object may no longer be
    updated" (PS3.4 F.7.2.2.2)."""


FindHandler = Callable[[FindRequest], Iterable[Dataset]]
"""The matches of a C-FIND, one pending response each; may raise `InvalidQuery`."""
NCreateHandler = Callable[[CallingNode, str, Dataset], NResult]
"""(caller, Affected SOP Instance UID or "", Attribute List) → the N-CREATE's result."""
NSetHandler = Callable[[CallingNode, str, Dataset], NResult]
"""(caller, Requested SOP Instance UID, Modification List) → the N-SET's result."""
ExtendedNegotiation = Callable[[bytes], bytes]
"""The requestor's application information for the SOP class → what the SCP accepts."""


@dataclass(frozen=True)
class DimseExtension:
    """One SOP class served on the archive's listener by another service."""

    sop_class_uid: str
    name: str
    """What it is, for the log (e.g. "modality worklist")."""
    find: FindHandler | None = None
    n_create: NCreateHandler | None = None
    n_set: NSetHandler | None = None
    extended_negotiation: ExtendedNegotiation | None = field(default=None)
    transfer_syntaxes: tuple[str, ...] = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
    """Explicit and implicit VR Little Endian, as for the archive's query models."""

    def __post_init__(self) -> None:
        if self.find is None and self.n_create is None and self.n_set is None:
            raise ValueError(f"{self.name}: a DIMSE service needs at least one handler")
