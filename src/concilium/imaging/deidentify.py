"""De-identification by the Basic Application Level Confidentiality Profile (PS3.15 E.2).

`BASIC_PROFILE` holds the actions of PS3.15 Table E.1-1 for the attributes found in the
images, structured reports and RT objects this archive receives. The actions are:

- ``D`` replace with a non-zero length dummy value consistent with the VR;
- ``Z`` replace with a zero length value (Patient's Name and ID get a pseudonym instead,
  which the profile allows, so that de-identified studies of one patient stay together);
- ``X`` remove; ``K`` keep; ``C`` clean (here: shift dates, see below);
- ``U`` replace the UID by another one, the same every time for the same UID and secret
  (an HMAC of the UID under the salt, as a ``2.25.`` UUID-derived UID, PS3.5 B.2).

Compound actions of the table (``X/Z``, ``Z/D``, ``X/D``, ``X/Z/D``, ``X/Z/U*``) depend on
the attribute's type in each IOD, which we do not track; the least destructive choice that
keeps Type 1 and Type 2 attributes valid is made (D over Z over X, U for UID sequences).
Private attributes, curves (50xx) and overlays (60xx) are removed (E.3.1, E.1-1 notes).

Option "Retain Longitudinal Temporal Information with Modified Dates" (E.3.6) keeps dates
and date-times shifted by a per-patient number of days, the same for every object of the
patient; times of day are kept as is. With the "Full Dates" variant they are kept unchanged.
Patient Identity Removed (0012,0062), De-identification Method (0012,0063) and its Code
Sequence (0012,0064, CID 7050) record what was done, as E.1.1 requires.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

__all__ = [
    "BASIC_PROFILE",
    "DeidentificationError",
    "DeidentificationOptions",
    "TemporalOption",
    "date_offset_days",
    "deidentify",
    "patient_key",
    "remap_uid",
]


class TemporalOption(enum.Enum):
    """How dates and times are treated (PS3.15 E.3.6)."""

    REMOVE = "remove"
    """Basic profile: dates removed or emptied."""
    MODIFIED_DATES = "modified"
    """Retain Longitudinal Temporal Information with Modified Dates (DCM 113107)."""
    FULL_DATES = "full"
    """Retain Longitudinal Temporal Information with Full Dates (DCM 113106)."""


class DeidentificationError(ValueError):
    """The object cannot be de-identified safely (e.g. identifying text burned in pixels)."""


@dataclass(frozen=True, slots=True)
class DeidentificationOptions:
    """Parameters of one de-identification; identical options give identical output."""

    salt: bytes
    """Secret from which UIDs, pseudonyms and date offsets derive; keep it per project."""
    temporal: TemporalOption = TemporalOption.MODIFIED_DATES
    """Treatment of dates (PS3.15 E.3.6)."""
    date_offset_days: int | None = None
    """Fixed shift in days; derived from the salt and Patient ID when None."""
    patient_pseudonym: str | None = None
    """Replacement Patient ID and Name; derived from the salt and Patient ID when None."""
    reject_burned_in_annotation: bool = True
    """Refuse objects whose Burned In Annotation (0028,0301) is YES (PS3.15 E.3.1)."""

    def __post_init__(self) -> None:
        if len(self.salt) < 16:
            raise ValueError("salt must be at least 16 bytes of secret")


def _t(group: int, element: int) -> int:
    return (group << 16) | element


#: Actions of PS3.15 Table E.1-1, Basic Profile column, by tag.
BASIC_PROFILE: Mapping[int, str] = MappingProxyType(
    {
        _t(0x0002, 0x0003): "U",  # Media Storage SOP Instance UID
        _t(0x0004, 0x1511): "U",  # Referenced SOP Instance UID in File
        _t(0x0008, 0x0012): "X/D",  # Instance Creation Date
        _t(0x0008, 0x0013): "X/Z/D",  # Instance Creation Time
        _t(0x0008, 0x0014): "U",  # Instance Creator UID
        _t(0x0008, 0x0015): "X",  # Instance Coercion DateTime
        _t(0x0008, 0x0018): "U",  # SOP Instance UID
        _t(0x0008, 0x0020): "Z",  # Study Date
        _t(0x0008, 0x0021): "X/D",  # Series Date
        _t(0x0008, 0x0022): "X/Z",  # Acquisition Date
        _t(0x0008, 0x0023): "Z/D",  # Content Date
        _t(0x0008, 0x0024): "X",  # Overlay Date
        _t(0x0008, 0x0025): "X",  # Curve Date
        _t(0x0008, 0x002A): "X/D",  # Acquisition DateTime
        _t(0x0008, 0x0030): "Z",  # Study Time
        _t(0x0008, 0x0031): "X/D",  # Series Time
        _t(0x0008, 0x0032): "X/Z",  # Acquisition Time
        _t(0x0008, 0x0033): "Z/D",  # Content Time
        _t(0x0008, 0x0034): "X",  # Overlay Time
        _t(0x0008, 0x0035): "X",  # Curve Time
        _t(0x0008, 0x0050): "Z",  # Accession Number
        _t(0x0008, 0x0058): "U",  # Failed SOP Instance UID List
        _t(0x0008, 0x0080): "X/Z/D",  # Institution Name
        _t(0x0008, 0x0081): "X",  # Institution Address
        _t(0x0008, 0x0082): "X/Z/D",  # Institution Code Sequence
        _t(0x0008, 0x0090): "Z",  # Referring Physician's Name
        _t(0x0008, 0x0092): "X",  # Referring Physician's Address
        _t(0x0008, 0x0094): "X",  # Referring Physician's Telephone Numbers
        _t(0x0008, 0x0096): "X",  # Referring Physician Identification Sequence
        _t(0x0008, 0x009C): "Z",  # Consulting Physician's Name
        _t(0x0008, 0x009D): "X",  # Consulting Physician Identification Sequence
        _t(0x0008, 0x010D): "U",  # Context Group Extension Creator UID
        _t(0x0008, 0x0201): "X",  # Timezone Offset From UTC
        _t(0x0008, 0x1010): "X/Z/D",  # Station Name
        _t(0x0008, 0x1030): "X",  # Study Description
        _t(0x0008, 0x103E): "X",  # Series Description
        _t(0x0008, 0x1040): "X",  # Institutional Department Name
        _t(0x0008, 0x1048): "X",  # Physician(s) of Record
        _t(0x0008, 0x1049): "X",  # Physician(s) of Record Identification Sequence
        _t(0x0008, 0x1050): "X",  # Performing Physicians' Name
        _t(0x0008, 0x1052): "X",  # Performing Physician Identification Sequence
        _t(0x0008, 0x1060): "X",  # Name of Physician(s) Reading Study
        _t(0x0008, 0x1062): "X",  # Physician(s) Reading Study Identification Sequence
        _t(0x0008, 0x1070): "X/Z/D",  # Operators' Name
        _t(0x0008, 0x1072): "X/D",  # Operators' Identification Sequence
        _t(0x0008, 0x1080): "X",  # Admitting Diagnoses Description
        _t(0x0008, 0x1084): "X",  # Admitting Diagnoses Code Sequence
        _t(0x0008, 0x1110): "X/Z",  # Referenced Study Sequence
        _t(0x0008, 0x1111): "X/Z/D",  # Referenced Performed Procedure Step Sequence
        _t(0x0008, 0x1120): "X",  # Referenced Patient Sequence
        _t(0x0008, 0x1140): "X/Z/U*",  # Referenced Image Sequence
        _t(0x0008, 0x1155): "U",  # Referenced SOP Instance UID
        _t(0x0008, 0x1195): "U",  # Transaction UID
        _t(0x0008, 0x2111): "X",  # Derivation Description
        _t(0x0008, 0x2112): "X/Z/U*",  # Source Image Sequence
        _t(0x0008, 0x4000): "X",  # Identifying Comments
        _t(0x0008, 0x9123): "U",  # Creator-Version UID
        _t(0x0010, 0x0010): "Z",  # Patient's Name
        _t(0x0010, 0x0020): "Z",  # Patient ID
        _t(0x0010, 0x0021): "X",  # Issuer of Patient ID
        _t(0x0010, 0x0030): "Z",  # Patient's Birth Date
        _t(0x0010, 0x0032): "X",  # Patient's Birth Time
        _t(0x0010, 0x0033): "X",  # Patient's Birth Date in Alternative Calendar
        _t(0x0010, 0x0034): "X",  # Patient's Death Date in Alternative Calendar
        _t(0x0010, 0x0040): "Z",  # Patient's Sex
        _t(0x0010, 0x0050): "X",  # Patient's Insurance Plan Code Sequence
        _t(0x0010, 0x0101): "X",  # Patient's Primary Language Code Sequence
        _t(0x0010, 0x0102): "X",  # Patient's Primary Language Modifier Code Sequence
        _t(0x0010, 0x1000): "X",  # Other Patient IDs
        _t(0x0010, 0x1001): "X",  # Other Patient Names
        _t(0x0010, 0x1002): "X",  # Other Patient IDs Sequence
        _t(0x0010, 0x1005): "X",  # Patient's Birth Name
        _t(0x0010, 0x1010): "X",  # Patient's Age
        _t(0x0010, 0x1020): "X",  # Patient's Size
        _t(0x0010, 0x1030): "X",  # Patient's Weight
        _t(0x0010, 0x1040): "X",  # Patient's Address
        _t(0x0010, 0x1060): "X",  # Patient's Mother's Birth Name
        _t(0x0010, 0x1080): "X",  # Military Rank
        _t(0x0010, 0x1081): "X",  # Branch of Service
        _t(0x0010, 0x1090): "X",  # Medical Record Locator
        _t(0x0010, 0x2000): "X",  # Medical Alerts
        _t(0x0010, 0x2110): "X",  # Allergies
        _t(0x0010, 0x2150): "X",  # Country of Residence
        _t(0x0010, 0x2152): "X",  # Region of Residence
        _t(0x0010, 0x2154): "X",  # Patient's Telephone Numbers
        _t(0x0010, 0x2155): "X",  # Patient's Telecom Information
        _t(0x0010, 0x2160): "X",  # Ethnic Group
        _t(0x0010, 0x2180): "X",  # Occupation
        _t(0x0010, 0x21A0): "X",  # Smoking Status
        _t(0x0010, 0x21B0): "X",  # Additional Patient History
        _t(0x0010, 0x21C0): "X",  # Pregnancy Status
        _t(0x0010, 0x21D0): "X",  # Last Menstrual Date
        _t(0x0010, 0x21F0): "X",  # Patient's Religious Preference
        _t(0x0010, 0x2203): "X/Z",  # Patient's Sex Neutered
        _t(0x0010, 0x2297): "X",  # Responsible Person
        _t(0x0010, 0x2299): "X",  # Responsible Organization
        _t(0x0010, 0x4000): "X",  # Patient Comments
        _t(0x0018, 0x0010): "Z/D",  # Contrast/Bolus Agent
        _t(0x0018, 0x1000): "X/Z/D",  # Device Serial Number
        _t(0x0018, 0x1002): "U",  # Device UID
        _t(0x0018, 0x1004): "X",  # Plate ID
        _t(0x0018, 0x1005): "X",  # Generator ID
        _t(0x0018, 0x1007): "X",  # Cassette ID
        _t(0x0018, 0x1008): "X",  # Gantry ID
        _t(0x0018, 0x1030): "X/D",  # Protocol Name
        _t(0x0018, 0x1200): "X",  # Date of Last Calibration
        _t(0x0018, 0x1201): "X",  # Time of Last Calibration
        _t(0x0018, 0x1400): "X/D",  # Acquisition Device Processing Description
        _t(0x0018, 0x4000): "X",  # Acquisition Comments
        _t(0x0018, 0x700A): "X/D",  # Detector ID
        _t(0x0018, 0x9074): "X/D",  # Frame Acquisition DateTime
        _t(0x0018, 0x9151): "X/D",  # Frame Reference DateTime
        _t(0x0018, 0x9424): "X",  # Acquisition Protocol Description
        _t(0x0018, 0x9517): "X/D",  # Start Acquisition DateTime
        _t(0x0018, 0x9518): "X/D",  # End Acquisition DateTime
        _t(0x0018, 0xA003): "X",  # Contribution Description
        _t(0x0020, 0x000D): "U",  # Study Instance UID
        _t(0x0020, 0x000E): "U",  # Series Instance UID
        _t(0x0020, 0x0010): "Z",  # Study ID
        _t(0x0020, 0x0052): "U",  # Frame of Reference UID
        _t(0x0020, 0x0200): "U",  # Synchronization Frame of Reference UID
        _t(0x0020, 0x3401): "X",  # Modifying Device ID
        _t(0x0020, 0x3404): "X",  # Modifying Device Manufacturer
        _t(0x0020, 0x3406): "X",  # Modified Image Description
        _t(0x0020, 0x4000): "X",  # Image Comments
        _t(0x0020, 0x9158): "X",  # Frame Comments
        _t(0x0020, 0x9161): "U",  # Concatenation UID
        _t(0x0020, 0x9164): "U",  # Dimension Organization UID
        _t(0x0028, 0x1199): "U",  # Palette Color Lookup Table UID
        _t(0x0028, 0x1214): "U",  # Large Palette Color Lookup Table UID
        _t(0x0028, 0x4000): "X",  # Image Presentation Comments
        _t(0x0032, 0x0012): "X",  # Study ID Issuer
        _t(0x0032, 0x0032): "X",  # Study Verified Date
        _t(0x0032, 0x0033): "X",  # Study Verified Time
        _t(0x0032, 0x0034): "X",  # Study Read Date
        _t(0x0032, 0x0035): "X",  # Study Read Time
        _t(0x0032, 0x1000): "X",  # Scheduled Study Start Date
        _t(0x0032, 0x1001): "X",  # Scheduled Study Start Time
        _t(0x0032, 0x1020): "X",  # Scheduled Study Location
        _t(0x0032, 0x1021): "X",  # Scheduled Study Location AE Title
        _t(0x0032, 0x1030): "X",  # Reason for Study
        _t(0x0032, 0x1032): "X",  # Requesting Physician
        _t(0x0032, 0x1033): "X",  # Requesting Service
        _t(0x0032, 0x1060): "X/Z",  # Requested Procedure Description
        _t(0x0032, 0x1070): "X",  # Requested Contrast Agent
        _t(0x0032, 0x4000): "X",  # Study Comments
        _t(0x0038, 0x0010): "X",  # Admission ID
        _t(0x0038, 0x0020): "X",  # Admitting Date
        _t(0x0038, 0x0021): "X",  # Admitting Time
        _t(0x0038, 0x0300): "X",  # Current Patient Location
        _t(0x0038, 0x0400): "X",  # Patient's Institution Residence
        _t(0x0038, 0x0500): "X",  # Patient State
        _t(0x0038, 0x4000): "X",  # Visit Comments
        _t(0x0040, 0x0001): "X",  # Scheduled Station AE Title
        _t(0x0040, 0x0002): "X",  # Scheduled Procedure Step Start Date
        _t(0x0040, 0x0003): "X",  # Scheduled Procedure Step Start Time
        _t(0x0040, 0x0004): "X",  # Scheduled Procedure Step End Date
        _t(0x0040, 0x0005): "X",  # Scheduled Procedure Step End Time
        _t(0x0040, 0x0006): "X",  # Scheduled Performing Physician Name
        _t(0x0040, 0x0007): "X",  # Scheduled Procedure Step Description
        _t(0x0040, 0x0009): "X",  # Scheduled Procedure Step ID
        _t(0x0040, 0x000B): "X",  # Scheduled Performing Physician Identification Sequence
        _t(0x0040, 0x0010): "X",  # Scheduled Station Name
        _t(0x0040, 0x0011): "X",  # Scheduled Procedure Step Location
        _t(0x0040, 0x0100): "X",  # Scheduled Procedure Step Sequence
        _t(0x0040, 0x0241): "X",  # Performed Station AE Title
        _t(0x0040, 0x0242): "X",  # Performed Station Name
        _t(0x0040, 0x0243): "X",  # Performed Location
        _t(0x0040, 0x0244): "X",  # Performed Procedure Step Start Date
        _t(0x0040, 0x0245): "X",  # Performed Procedure Step Start Time
        _t(0x0040, 0x0250): "X",  # Performed Procedure Step End Date
        _t(0x0040, 0x0251): "X",  # Performed Procedure Step End Time
        _t(0x0040, 0x0253): "X",  # Performed Procedure Step ID
        _t(0x0040, 0x0254): "X",  # Performed Procedure Step Description
        _t(0x0040, 0x0275): "X",  # Request Attributes Sequence
        _t(0x0040, 0x0280): "X",  # Comments on the Performed Procedure Step
        _t(0x0040, 0x0555): "X",  # Acquisition Context Sequence
        _t(0x0040, 0x1001): "X",  # Requested Procedure ID
        _t(0x0040, 0x1004): "X",  # Patient Transport Arrangements
        _t(0x0040, 0x1005): "X",  # Requested Procedure Location
        _t(0x0040, 0x1010): "X",  # Names of Intended Recipients of Results
        _t(0x0040, 0x1400): "X",  # Requested Procedure Comments
        _t(0x0040, 0x2001): "X",  # Reason for the Imaging Service Request
        _t(0x0040, 0x2008): "X",  # Order Entered By
        _t(0x0040, 0x2009): "X",  # Order Enterer's Location
        _t(0x0040, 0x2010): "X",  # Order Callback Phone Number
        _t(0x0040, 0x2016): "Z",  # Placer Order Number / Imaging Service Request
        _t(0x0040, 0x2017): "Z",  # Filler Order Number / Imaging Service Request
        _t(0x0040, 0x2400): "X",  # Imaging Service Request Comments
        _t(0x0040, 0x3001): "X",  # Confidentiality Constraint on Patient Data Description
        _t(0x0040, 0xA027): "X",  # Verifying Organization
        _t(0x0040, 0xA030): "D",  # Verification DateTime
        _t(0x0040, 0xA032): "X/D",  # Observation DateTime
        _t(0x0040, 0xA073): "D",  # Verifying Observer Sequence
        _t(0x0040, 0xA075): "D",  # Verifying Observer Name
        _t(0x0040, 0xA078): "X",  # Author Observer Sequence
        _t(0x0040, 0xA07A): "X",  # Participant Sequence
        _t(0x0040, 0xA07C): "X",  # Custodial Organization Sequence
        _t(0x0040, 0xA088): "Z",  # Verifying Observer Identification Code Sequence
        _t(0x0040, 0xA120): "X",  # DateTime (content item)
        _t(0x0040, 0xA121): "X",  # Date (content item)
        _t(0x0040, 0xA122): "X",  # Time (content item)
        _t(0x0040, 0xA123): "X",  # Person Name (content item)
        _t(0x0040, 0xA124): "U",  # UID (content item)
        _t(0x0040, 0xA160): "X",  # Text Value
        _t(0x0040, 0xA730): "X",  # Content Sequence
        _t(0x0040, 0xDB0C): "U",  # Template Extension Organization UID
        _t(0x0040, 0xDB0D): "U",  # Template Extension Creator UID
        _t(0x0070, 0x0001): "D",  # Graphic Annotation Sequence
        _t(0x0070, 0x0084): "Z",  # Content Creator's Name
        _t(0x0070, 0x0086): "X",  # Content Creator's Identification Code Sequence
        _t(0x0088, 0x0140): "U",  # Storage Media File-set UID
        _t(0x3006, 0x0024): "U",  # Referenced Frame of Reference UID
        _t(0x3006, 0x00C2): "U",  # Related Frame of Reference UID
        _t(0x300A, 0x0013): "U",  # Dose Reference UID
        _t(0x300E, 0x0008): "X/Z",  # Reviewer Name
        _t(0x4000, 0x0010): "X",  # Arbitrary
        _t(0x4000, 0x4000): "X",  # Text Comments
        _t(0x4008, 0x0042): "X",  # Results ID Issuer
        _t(0x4008, 0x0102): "X",  # Interpretation Recorder
        _t(0x4008, 0x010A): "X",  # Interpretation Transcriber
        _t(0x4008, 0x010B): "X",  # Interpretation Text
        _t(0x4008, 0x010C): "X",  # Interpretation Author
        _t(0x4008, 0x0111): "X",  # Interpretation Approver Sequence
        _t(0x4008, 0x0114): "X",  # Physician Approving Interpretation
        _t(0x4008, 0x0115): "X",  # Interpretation Diagnosis Description
        _t(0x4008, 0x0118): "X",  # Results Distribution List Sequence
        _t(0x4008, 0x0119): "X",  # Distribution Name
        _t(0x4008, 0x011A): "X",  # Distribution Address
        _t(0x4008, 0x0202): "X",  # Interpretation ID Issuer
        _t(0x4008, 0x0300): "X",  # Impressions
        _t(0x4008, 0x4000): "X",  # Results Comments
        _t(0xFFFA, 0xFFFA): "X",  # Digital Signatures Sequence
        _t(0xFFFC, 0xFFFC): "X",  # Data Set Trailing Padding
    }
)

#: Code Sequence Macro values of CID 7050 (PS3.16) used in (0012,0064).
_METHOD_CODES: Mapping[str, str] = {
    "113100": "Basic Application Confidentiality Profile",
    "113106": "Retain Longitudinal Temporal Information Full Dates Option",
    "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
}

# Dummy values for action D, by VR (PS3.15 E.1.1: "consistent with the VR").
_DUMMY: Mapping[str, Any] = {
    "AE": "ANONYMOUS",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UT": "ANONYMIZED",
    "UR": "",
}
_DATE_VRS = frozenset({"DA", "DT"})
# Shifting whole days keeps these; Patient's Birth Date is not covered by E.3.6 and stays Z.
_TEMPORAL_EXEMPT = frozenset({_t(0x0010, 0x0030)})
_MAX_OFFSET_DAYS = 3650
# UIDs that name a kind of object rather than an object: never remapped, even when private.
_CLASS_UIDS = frozenset(
    {
        _t(0x0002, 0x0002),  # Media Storage SOP Class UID
        _t(0x0002, 0x0010),  # Transfer Syntax UID
        _t(0x0004, 0x1510),  # Referenced SOP Class UID in File
        _t(0x0008, 0x0016),  # SOP Class UID
        _t(0x0008, 0x0062),  # SOP Classes in Study
        _t(0x0008, 0x010C),  # Coding Scheme UID
        _t(0x0008, 0x1150),  # Referenced SOP Class UID
    }
)
# File Meta Information elements that name the sending site or carry private data.
_META_REMOVED = (
    _t(0x0002, 0x0016),  # Source Application Entity Title
    _t(0x0002, 0x0017),  # Sending Application Entity Title
    _t(0x0002, 0x0018),  # Receiving Application Entity Title
    _t(0x0002, 0x0026),  # Source Presentation Address
    _t(0x0002, 0x0027),  # Sending Presentation Address
    _t(0x0002, 0x0028),  # Receiving Presentation Address
    _t(0x0002, 0x0100),  # Private Information Creator UID
    _t(0x0002, 0x0102),  # Private Information
)


def _hmac(salt: bytes, purpose: str, value: str) -> bytes:
    return hmac.new(salt, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()


def remap_uid(uid: str, salt: bytes) -> str:
    """Replacement UID for `uid` (action U): ``2.25.`` and 128 bits of HMAC (PS3.5 B.2).

    Deterministic, so every object of a study maps its references identically.
    """
    return "2.25." + str(int.from_bytes(_hmac(salt, "uid", uid)[:16], "big"))


def patient_key(ds: Dataset) -> str:
    """What identifies the patient for pseudonyms and date shifts.

    Patient ID qualified by its issuer, since two hospitals of a region may hand out the
    same number; name and birth date when there is no ID at all.
    """
    patient_id = str(ds.get("PatientID", "") or "").strip()
    if patient_id:
        return f"id\x00{ds.get('IssuerOfPatientID', '') or ''}\x00{patient_id}"
    return f"name\x00{ds.get('PatientName', '') or ''}\x00{ds.get('PatientBirthDate', '') or ''}"


def date_offset_days(key: str, salt: bytes) -> int:
    """Per-patient date shift for `patient_key`: between 1 and 3650 days into the past."""
    value = int.from_bytes(_hmac(salt, "date-offset", key)[:8], "big")
    return -(1 + value % _MAX_OFFSET_DAYS)


def _pseudonym(key: str, salt: bytes) -> str:
    return "ANON-" + _hmac(salt, "patient", key).hex()[:16].upper()


def _shift_da(value: str, days: int) -> str:
    text = value.strip()
    if len(text) != 8 or not text.isdigit():
        return ""
    try:
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return ""
    return (day + dt.timedelta(days=days)).strftime("%Y%m%d")


def _shift_dt(value: str, days: int) -> str:
    text = value.strip()
    if len(text) < 4 or not text[:4].isdigit():
        return ""
    if len(text) < 8 or not text[:8].isdigit():
        # Year or year-month precision: shift by whole years to stay consistent.
        return str(int(text[:4]) + round(days / 365.25)) + text[4:]
    shifted = _shift_da(text[:8], days)
    return shifted + text[8:] if shifted else ""


class _Deidentifier:
    def __init__(self, options: DeidentificationOptions, key: str) -> None:
        self.options = options
        self.salt = options.salt
        if options.date_offset_days is not None:
            self.offset = options.date_offset_days
        else:
            self.offset = date_offset_days(key, self.salt)
        self.pseudonym = options.patient_pseudonym or _pseudonym(key, self.salt)

    def map_uid(self, value: str) -> str:
        # Registered UIDs (SOP classes, transfer syntaxes, coding schemes) identify nothing.
        if not value or UID(value).name != value:
            return value
        return remap_uid(value, self.salt)

    def process(self, ds: Dataset) -> None:
        for tag in list(ds.keys()):
            elem = ds[tag]
            if (
                tag.is_private
                or tag.group in range(0x5000, 0x5100, 2)
                or (0x6000 <= tag.group <= 0x60FF and tag.group % 2 == 0)
            ):
                del ds[tag]
                continue
            action = BASIC_PROFILE.get(int(tag))
            vr = str(elem.VR)
            if action is None:
                if vr == "SQ":
                    self._recurse(elem)
                elif vr == "UI" and int(tag) not in _CLASS_UIDS:
                    # UIDs outside the table (e.g. private-standard references) are
                    # remapped too: an instance UID may embed a device serial or a date.
                    self._remap(elem)
                elif vr in _DATE_VRS:
                    # Dates outside the table are kept by the profile, but under the
                    # modified-dates option they must move with the others.
                    self._temporal(elem)
                continue
            self._apply(ds, elem, action)

    def _recurse(self, elem: DataElement) -> None:
        for item in elem.value or []:
            self.process(item)

    def _remap(self, elem: DataElement) -> None:
        value = elem.value
        if isinstance(value, MultiValue | list):
            elem.value = [self.map_uid(str(v)) for v in value]
        elif value:
            elem.value = self.map_uid(str(value))

    def _temporal(self, elem: DataElement) -> bool:
        """Apply the E.3.6 option; True if it decided the element's fate."""
        temporal = self.options.temporal
        if temporal is TemporalOption.REMOVE or int(elem.tag) in _TEMPORAL_EXEMPT:
            return False
        vr = str(elem.VR)
        if vr not in _DATE_VRS and vr != "TM":
            return False
        if temporal is TemporalOption.FULL_DATES or vr == "TM":
            return True
        shift = _shift_da if vr == "DA" else _shift_dt
        values = elem.value
        if isinstance(values, MultiValue | list):
            elem.value = [shift(str(v), self.offset) for v in values]
        elif values:
            elem.value = shift(str(values), self.offset)
        return True

    def _apply(self, ds: Dataset, elem: DataElement, action: str) -> None:
        vr = str(elem.VR)
        if self._temporal(elem):
            return
        choices = action.split("/")
        if elem.tag == 0x00100020:
            elem.value = self.pseudonym
        elif elem.tag == 0x00100010:
            # Family^Given form, so viewers and validators read it as a person name.
            elem.value = self.pseudonym.replace("-", "^", 1)
        elif "U" in choices or "U*" in choices:
            if vr == "SQ":
                self._recurse(elem)
            else:
                self._remap(elem)
        elif "D" in choices:
            if vr == "SQ":
                self._recurse(elem)
            elif vr in ("UI",):
                self._remap(elem)
            elif vr in _DUMMY:
                elem.value = _DUMMY[vr]
            else:
                elem.value = b"" if vr.startswith("O") or vr == "UN" else None
        elif "Z" in choices:
            elem.value = Sequence() if vr == "SQ" else (b"" if vr.startswith("O") else "")
        elif "K" in choices:
            if vr == "SQ":
                self._recurse(elem)
        else:  # X
            del ds[elem.tag]


def _method_code(value: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = _METHOD_CODES[value]
    return item


def deidentify(ds: Dataset, options: DeidentificationOptions) -> Dataset:
    """Return a de-identified copy of `ds` (PS3.15 E.2 and E.3.6); `ds` is left untouched.

    Raises `DeidentificationError` when Burned In Annotation is YES and the options refuse it.
    """
    if (
        options.reject_burned_in_annotation
        and str(ds.get("BurnedInAnnotation", "")).upper() == "YES"
    ):
        raise DeidentificationError("identifying text is burned into the pixel data")
    out = copy.deepcopy(ds)
    worker = _Deidentifier(options, patient_key(ds))
    worker.process(out)

    meta: Dataset | None = getattr(out, "file_meta", None)
    if meta is not None:
        if "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = UID(out.get("SOPInstanceUID", ""))
        for tag in _META_REMOVED:
            if tag in meta:
                del meta[tag]

    out.PatientIdentityRemoved = "YES"
    codes = ["113100"]
    if options.temporal is TemporalOption.MODIFIED_DATES:
        codes.append("113107")
        out.LongitudinalTemporalInformationModified = "MODIFIED"
    elif options.temporal is TemporalOption.FULL_DATES:
        codes.append("113106")
        out.LongitudinalTemporalInformationModified = "UNMODIFIED"
    else:
        out.LongitudinalTemporalInformationModified = "REMOVED"
    # One LO value per method keeps each within the 64 characters LO allows.
    out.DeidentificationMethod = [_METHOD_CODES[c] for c in codes]
    out.DeidentificationMethodCodeSequence = Sequence([_method_code(c) for c in codes])
    return out
