"""Scheduled items the worklist tests share, and writing them for DCMTK's ``wlmscpfs``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from concilium.reading.worklist import Code, StepStatus, WorklistItem, WorklistStep, item_dataset

CT_HEAD = Code("ZCT01", "99BRIEY", "Scanner cérébral")
CT_CHEST = Code("ZCT02", "99BRIEY", "Angioscanner thoracique")
PROTOCOL = Code("P-HEAD", "99BRIEY", "Protocole AVC")


def items(day: dt.date) -> list[WorklistItem]:
    """Six scheduled steps of one day at CH Briey, shaped after DCMTK's example worklist
    database (stations AA2/A2 and AA4, a modality ``DD``, times either side of noon)."""
    return [
        WorklistItem(
            patient_name="VIVALDI^ANTONIO",
            patient_id="AV35674",
            issuer_of_patient_id="CHBRIEY",
            patient_birth_date=dt.date(1978, 3, 4),
            patient_sex="M",
            accession_number="ACC0001",
            requested_procedure_id="RP454G234",
            requested_procedure_description="SCANNER CEREBRAL",
            requested_procedure_codes=(CT_HEAD,),
            study_instance_uid="1.2.276.0.7230010.3.2.101",
            referring_physician="SMITH^JOHN",
            requesting_physician="MARTIN^PAUL",
            priority="STAT",
            admission_id="ADM0001",
            step=WorklistStep(
                step_id="SPD3445",
                modality="CT",
                start_date=day,
                start_time=dt.time(8, 56, 7),
                station_ae_title="AA2",
                station_name="A2",
                description="SCANNER CEREBRAL SANS INJECTION",
                performing_physician="JOHNSON^ANN",
                location="B34F56",
                protocol_codes=(PROTOCOL,),
            ),
        ),
        WorklistItem(
            patient_name="MÜLLER^HÉLÈNE",
            patient_id="BR2001",
            issuer_of_patient_id="CHBRIEY",
            patient_birth_date=dt.date(1950, 11, 30),
            patient_sex="F",
            accession_number="ACC0002",
            requested_procedure_id="RP0002",
            requested_procedure_description="ANGIOSCANNER THORACIQUE",
            requested_procedure_codes=(CT_CHEST, CT_HEAD),
            study_instance_uid="1.2.276.0.7230010.3.2.102",
            referring_physician="DUPONT^MARIE",
            requesting_physician="DUPONT^MARIE",
            priority="HIGH",
            step=WorklistStep(
                step_id="SPS0002",
                modality="CT",
                start_date=day,
                start_time=dt.time(13, 30),
                station_ae_title="AA2",
                station_name="A2",
                description="ANGIOSCANNER",
                performing_physician="JOHNSON^ANN",
                location="B34F56",
            ),
        ),
        WorklistItem(
            patient_name="BACH^JOHANN^SEBASTIAN",
            patient_id="BR2002",
            patient_birth_date=dt.date(1985, 3, 21),
            patient_sex="M",
            accession_number="ACC0003",
            requested_procedure_id="RP0003",
            requested_procedure_description="EXAMEN DD",
            study_instance_uid="1.2.276.0.7230010.3.2.103",
            priority="ROUTINE",
            step=WorklistStep(
                step_id="SPS0003",
                modality="DD",
                start_date=day,
                start_time=dt.time(14, 0),
                station_ae_title="AA4",
                station_name="A2",
                description="EXAMEN DD",
                location="C12",
            ),
        ),
        WorklistItem(
            patient_name="MOZART^WOLFGANG",
            patient_id="BR2003",
            patient_birth_date=dt.date(1956, 1, 27),
            patient_sex="M",
            accession_number="ACC0004",
            requested_procedure_id="RP0004",
            requested_procedure_description="IRM GENOU",
            study_instance_uid="1.2.276.0.7230010.3.2.104",
            referring_physician="SMITH^JOHN",
            priority="LOW",
            step=WorklistStep(
                step_id="SPS0004",
                modality="MR",
                start_date=day,
                start_time=dt.time(11, 0),
                station_ae_title="AA4",
                station_name="B5",
                description="IRM GENOU DROIT",
                performing_physician="LEGRAND^LUC",
                location="IRM1",
            ),
        ),
        WorklistItem(
            patient_name="CHOPIN^FREDERIC",
            patient_id="BR2004",
            patient_sex="M",
            accession_number="ACC0005",
            requested_procedure_id="RP0005",
            requested_procedure_description="RADIO THORAX",
            study_instance_uid="1.2.276.0.7230010.3.2.105",
            priority="ROUTINE",
            step=WorklistStep(
                step_id="SPS0005",
                modality="CR",
                start_date=day + dt.timedelta(days=1),
                start_time=dt.time(9, 15),
                station_ae_title="AA2",
                station_name="A2",
                description="THORAX FACE",
                location="RX2",
            ),
        ),
        WorklistItem(
            patient_name="SCHUBERT^FRANZ",
            patient_id="BR2005",
            patient_birth_date=dt.date(1997, 1, 31),
            patient_sex="M",
            accession_number="ACC0006",
            requested_procedure_id="RP0006",
            requested_procedure_description="ECHOGRAPHIE ABDOMINALE",
            study_instance_uid="1.2.276.0.7230010.3.2.106",
            priority="MEDIUM",
            step=WorklistStep(
                step_id="SPS0006",
                modality="US",
                start_date=day,
                start_time=dt.time(12, 0),
                station_ae_title="AA3",
                station_name="US1",
                description="ECHO ABDO",
                status=StepStatus.SCHEDULED,
            ),
        ),
    ]


def _dump_lines(ds: Dataset, depth: int = 0) -> list[str]:
    lines: list[str] = []
    pad = "  " * depth
    for elem in ds:
        tag = f"({elem.tag.group:04x},{elem.tag.element:04x})"
        if elem.VR == "SQ":
            lines.append(f"{pad}{tag} SQ")
            for child in elem.value:
                lines.append(f"{pad}  (fffe,e000) -")
                lines += _dump_lines(child, depth + 2)
                lines.append(f"{pad}  (fffe,e00d) -")
            lines.append(f"{pad}(fffe,e0dd) -")
            continue
        lines.append(f"{pad}{tag} {elem.VR} [{_dump_value(elem)}]")
    return lines


def _dump_value(elem: DataElement) -> str:
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, list | tuple) or (
        hasattr(value, "__iter__") and not isinstance(value, str | bytes) and elem.VR != "PN"
    ):
        return "\\".join(str(v) for v in value)
    return str(value)


def dump(item: WorklistItem) -> str:
    """The item's data set (`item_dataset`) in ``dump2dcm``'s text form (UTF-8)."""
    return "\n".join(_dump_lines(item_dataset(item))) + "\n"


def write_wlmscpfs_database(
    root: Path, ae_title: str, scheduled: list[WorklistItem], run_dump2dcm: object
) -> Path:
    """A ``wlmscpfs`` data directory: ``root/<AE title>/`` with its ``lockfile`` and one
    ``.wl`` file per item, converted by ``dump2dcm``. Returns ``root``."""
    folder = root / ae_title
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lockfile").write_text("")
    for number, item in enumerate(scheduled, 1):
        source = folder / f"item{number}.dump"
        source.write_text(dump(item), encoding="utf-8")
        assert callable(run_dump2dcm)
        run_dump2dcm(source, folder / f"item{number}.wl")
    return root
