"""HL7 v2 messages of a hospital system for the tests of the modality side: an admission
(ADT^A01) and an imaging order (ORM^O01, v2.3.1) with its start and scheduled station."""

from __future__ import annotations

PID = "PID|1||IPP001^^^CHBRIEY^PI||Lefèvre^Hélène||19850523|F"
PV1 = "PV1|1|E|URG^^^CHBRIEY|||||10002^Durand^Anne^^^DR"


def msh(kind: str, control_id: str, version: str) -> str:
    return (
        f"MSH|^~\\&|HIS|CHBRIEY|CONCILIUM|GHT|20260307010000||{kind}|{control_id}|P|"
        f"{version}||||||UNICODE UTF-8"
    )


def adt_a01(control_id: str, pid: str = PID) -> bytes:
    """The admission of the patient."""
    segments = [msh("ADT^A01^ADT_A01", control_id, "2.5.1"), "EVN||20260307010000", pid, PV1]
    return "\r".join(segments).encode()


def orm_o01(
    control_id: str,
    *,
    accession: str,
    start: str,
    station: str = "BRIEY_CT",
    modality: str = "CT",
    requested_procedure: str = "RP-1",
    step: str = "SPS-1",
    control: str = "NW",
    status: str = "SC",
    pid: str = PID,
) -> bytes:
    """An order of one CT step starting at ``start`` (HL7 DTM, local time of the sender
    unless it carries an offset) on ``station`` (ORC-18)."""
    placer = f"PL-{accession}"
    orc = (
        f"ORC|{control}|{placer}^HIS|FL-{accession}^RIS||{status}||^^^{start}^^S||"
        f"20260307010000|||20001^Bernard^Luc^^^DR||||||{station}"
    )
    obr = ["OBR", "1", f"{placer}^HIS", f"FL-{accession}^RIS"]
    obr += ["TDM-THX^Scanner thorax^LOCAL^P1^Protocole thorax^L"]
    obr += [""] * 8 + ["Douleur thoracique"]
    obr += ["", "", "20001^Bernard^Luc^^^DR", "", accession, requested_procedure, step]
    obr += ["", "", "", modality, "", f"^^^{start}^^S"]
    segments = [msh("ORM^O01", control_id, "2.3.1"), pid, PV1, orc, "|".join(obr)]
    return "\r".join(segments).encode()
