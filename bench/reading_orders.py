"""The data of ``bench/reading.py``: CH Briey's patients and imaging orders, written as HL7 v2
messages (ADT^A04, ORM^O01), and the modality worklist queries asked of Concilium and of
``wlmscpfs``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

HIS = ("HIS", "CHBRIEY")
"""The registered sender: MSH-3 and MSH-4."""
START_OF_BLOCK, END_OF_BLOCK = b"\x0b", b"\x1c\r"


@dataclass(frozen=True)
class Station:
    ae_title: str
    modality: str
    code: str
    text: str


STATIONS = (
    Station("BRIEY_CT1", "CT", "TDM-THX", "SCANNER THORAX"),
    Station("BRIEY_CT2", "CT", "TDM-CRANE", "SCANNER CEREBRAL"),
    Station("BRIEY_MR1", "MR", "IRM-GEN", "IRM GENOU"),
    Station("BRIEY_CR1", "CR", "RX-THX", "RADIO THORAX"),
    Station("BRIEY_US1", "US", "ECHO-ABD", "ECHOGRAPHIE ABDOMINALE"),
)
FAMILY_NAMES = (
    "MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU",
    "LAURENT", "SIMON", "MICHEL", "LEFEBVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
    "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT",
    "MULLER", "LEFEVRE", "FAURE", "ANDRE", "MERCIER", "BLANC", "GUERIN", "BOYER", "GARNIER",
    "CHEVALIER", "FRANCOIS", "LEGRAND", "GAUTHIER", "GARCIA",
)  # fmt: skip
GIVEN_NAMES = (
    "LOUIS", "GABRIEL", "JULES", "ADAM", "ARTHUR", "EMMA", "JADE", "LOUISE", "ALICE", "CHLOE",
    "HUGO", "LEO", "RAPHAEL", "LINA", "ROSE", "ANNA", "MIA", "PAUL", "NATHAN", "LEA",
)  # fmt: skip
DAYS = 20
"""Scheduled dates span this many days, today the sixth."""


@dataclass(frozen=True)
class PatientSpec:
    number: int

    @property
    def identifier(self) -> str:
        return f"BP{self.number:06d}"

    @property
    def family(self) -> str:
        return FAMILY_NAMES[self.number % len(FAMILY_NAMES)]

    @property
    def given(self) -> str:
        return GIVEN_NAMES[(self.number // len(FAMILY_NAMES)) % len(GIVEN_NAMES)]

    @property
    def birth_date(self) -> dt.date:
        return dt.date(1940, 1, 1) + dt.timedelta(days=(self.number * 7919) % 25000)

    @property
    def sex(self) -> str:
        return "F" if self.number % 2 else "M"

    def pid(self) -> str:
        return (
            f"PID|1||{self.identifier}^^^CHBRIEY^PI||{self.family}^{self.given}||"
            f"{self.birth_date:%Y%m%d}|{self.sex}"
        )


@dataclass(frozen=True)
class OrderSpec:
    number: int
    patient: PatientSpec
    station: Station
    start: dt.datetime
    """Scheduled start, Paris local time (naive)."""

    @property
    def accession(self) -> str:
        return f"BA{self.number:07d}"

    @property
    def requested_procedure_id(self) -> str:
        return f"RP{self.number:07d}"

    @property
    def step_id(self) -> str:
        return f"SPS{self.number:07d}"

    @property
    def study_instance_uid(self) -> str:
        """Sent in ZDS-1, as a RIS does in IHE SWF: a Study Instance UID is Type 1 in
        worklist answers, and ``wlmscpfs`` ignores an item without one."""
        return f"1.2.826.0.1.3680043.10.1154.{self.number + 1}"

    @property
    def control_id(self) -> str:
        return f"ORM{self.number:07d}"


def make_patients(count: int) -> list[PatientSpec]:
    return [PatientSpec(n) for n in range(count)]


def make_orders(count: int, patients: Sequence[PatientSpec], today: dt.date) -> list[OrderSpec]:
    """``count`` orders spread over stations, ``DAYS`` days and the hours 07:00-19:00."""
    first = today - dt.timedelta(days=5)
    orders = []
    for n in range(count):
        day = first + dt.timedelta(days=(n // len(STATIONS)) % DAYS)
        minutes = 7 * 60 + ((n // (len(STATIONS) * DAYS)) * 13) % (12 * 60)
        start = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60))
        orders.append(
            OrderSpec(n, patients[(n * 31) % len(patients)], STATIONS[n % len(STATIONS)], start)
        )
    return orders


def msh(kind: str, control_id: str, version: str) -> str:
    return (
        f"MSH|^~\\&|{HIS[0]}|{HIS[1]}|CONCILIUM|GHT|20261207020000||{kind}|{control_id}|P|"
        f"{version}||||||UNICODE UTF-8"
    )


def adt_a04(patient: PatientSpec) -> bytes:
    return "\r".join(
        [
            msh("ADT^A04^ADT_A01", f"ADT{patient.number:07d}", "2.5.1"),
            "EVN||20261207020000",
            patient.pid(),
            "PV1|1|O|RADIO^^^CHBRIEY",
        ]
    ).encode()


def orm_o01(order: OrderSpec) -> bytes:
    """An ORM^O01 (v2.3.1, IHE SWF) new order with one scheduled step, its station AE title
    in ORC-18 as several RIS send it, its Study Instance UID in ZDS-1."""
    station, start = order.station, f"{order.start:%Y%m%d%H%M%S}"
    placer = f"PL{order.number:07d}"
    orc = [
        "ORC", "NW", f"{placer}^HIS", f"FL{order.number:07d}^RIS", "", "SC", "",
        f"^^^{start}^^R", "", "20261207020000", "", "", "20001^BERNARD^LUC^^^DR",
        "", "", "", "", "", station.ae_title,
    ]  # fmt: skip
    obr = ["OBR", "1", f"{placer}^HIS", f"FL{order.number:07d}^RIS"]
    obr += [f"{station.code}^{station.text}^LOCAL"] + [""] * 8 + ["BILAN"]
    obr += ["", "", "20001^BERNARD^LUC^^^DR", "", order.accession]
    obr += [order.requested_procedure_id, order.step_id, "", "", "", station.modality]
    obr += ["", f"^^^{start}^^R"]
    return "\r".join(
        [
            msh("ORM^O01", order.control_id, "2.3.1"),
            order.patient.pid(),
            "PV1|1|O|RADIO^^^CHBRIEY|||||10002^DURAND^ANNE^^^DR",
            "|".join(orc),
            "|".join(obr),
            f"ZDS|{order.study_instance_uid}^RIS^Application^DICOM",
        ]
    ).encode()


def framed(message: bytes) -> bytes:
    return START_OF_BLOCK + message + END_OF_BLOCK


@dataclass(frozen=True)
class Query:
    kind: str
    calling: str
    keys: Dataset
    findscu_keys: tuple[str, ...]


def return_keys(ds: Dataset) -> None:
    """The attributes a modality typically asks back (empty return keys)."""
    for keyword in (
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
        "RequestedProcedureID", "RequestedProcedureDescription", "StudyInstanceUID",
        "ReferringPhysicianName",
    ):  # fmt: skip
        if keyword not in ds:
            setattr(ds, keyword, "")


STEP_KEYS = (
    "ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime", "Modality", "ScheduledProcedureStepID",
    "ScheduledProcedureStepDescription",
)  # fmt: skip
FINDSCU_RETURN = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
    "RequestedProcedureID", "RequestedProcedureDescription", "StudyInstanceUID",
    "ReferringPhysicianName",
)  # fmt: skip


def make_query(kind: str, calling: str, top: dict[str, str], step: dict[str, str]) -> Query:
    ds = Dataset()
    for keyword, value in top.items():
        setattr(ds, keyword, value)
    return_keys(ds)
    item = Dataset()
    for keyword in STEP_KEYS:
        setattr(item, keyword, step.get(keyword, ""))
    ds.ScheduledProcedureStepSequence = [item]
    args = [f"{k}={v}" if v else k for k, v in top.items()]
    args += [k for k in FINDSCU_RETURN if k not in top]
    args += [
        f"ScheduledProcedureStepSequence[0].{k}" + (f"={step[k]}" if step.get(k) else "")
        for k in STEP_KEYS
    ]
    return Query(kind, calling, ds, tuple(args))


def worklist_queries(orders: Sequence[OrderSpec], count: int, today: dt.date) -> list[Query]:
    """``count`` queries of each kind, cycling over stations, names and accession numbers."""
    queries: list[Query] = []
    for n in range(count):
        station = STATIONS[n % len(STATIONS)]
        queries.append(
            make_query(
                "station AE + today",
                station.ae_title,
                {},
                {"ScheduledStationAETitle": station.ae_title,
                 "ScheduledProcedureStepStartDate": f"{today:%Y%m%d}"},
            )
        )  # fmt: skip
        prefix = FAMILY_NAMES[(n * 7) % len(FAMILY_NAMES)][:4]
        queries.append(
            make_query("patient name wildcard", station.ae_title, {"PatientName": f"{prefix}*"}, {})
        )
        order = orders[(n * 7919) % len(orders)]
        queries.append(
            make_query(
                "accession number",
                order.station.ae_title,
                {"AccessionNumber": order.accession},
                {},
            )
        )
    return queries
