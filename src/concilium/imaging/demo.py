"""The archive's part of the demonstration: per demo hospital, a modality node and a few
small studies of the demo patients, received as a modality sends them.

What exists is left alone, so that loading twice adds nothing twice.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from concilium.imaging.archive import Archive, study_by_uid
from concilium.imaging.ingest import Sender, ingest_instance
from concilium.imaging.nodes import add_remote_ae, peer_actor, peer_principal, remote_ae
from concilium.imaging.synthetic import (
    SyntheticPatient,
    SyntheticStudy,
    generate_ct_series,
    generate_dx_image,
    generate_xa_cine,
)
from concilium.imaging.tables import RemoteApplicationEntity
from concilium.platform import accounts, audit
from concilium.platform.db import transaction
from concilium.platform.demo import PATIENTS, SITES

__all__ = ["DEMO_NODES", "DemoStudies", "load"]

DEMO_NODES = {"570005165": ("DEMO_CT_METZ", 11121), "540000049": ("DEMO_CT_BRIEY", 11122)}
"""Per demo hospital (FINESS), its modality's AE title and port, on this machine."""
SIZE = 64
"""Pixels a side: small images keep the demonstration quick to load."""


@dataclass(frozen=True)
class DemoStudies:
    nodes: int
    """Demo modality nodes registered."""
    studies: int
    """Demo studies in the archive."""
    added: int
    """Of them, studies this run sent."""


def _node(session: Session, finess: str, site_id: int) -> tuple[RemoteApplicationEntity, bool]:
    title, port = DEMO_NODES[finess]
    found = remote_ae(session, title)
    if found is not None:
        return found, False
    node = add_remote_ae(
        session,
        audit.Actor(None, "demo-loader"),
        ae_title=title,
        host="127.0.0.1",
        port=port,
        site_id=site_id,
        allow_store=True,
        allow_query=True,
        allow_move_destination=True,
        description="Demonstration modality",
    )
    return node, True


def _files(folder: Path, study: SyntheticStudy, index: int) -> list[Path]:
    """A CT of ten slices and an XA cine loop for the first patient of a site, an X-ray
    for the others."""
    if index == 0:
        paths = generate_ct_series(folder, 10, study=study, rows=SIZE, columns=SIZE)
        paths.append(generate_xa_cine(folder, 20, study=study, rows=SIZE, columns=SIZE))
        return paths
    return [generate_dx_image(folder, study=study, rows=SIZE, columns=SIZE)]


def load(archive: Archive) -> DemoStudies:
    """Register the demo nodes and send the studies that are missing."""
    nodes_count = studies = added = 0
    for site_index, (_, finess) in enumerate(SITES):
        with transaction(archive.sessions) as session:
            site = accounts.site_by_finess(session, finess)
            node, _ = _node(session, finess, site.id)
            nodes_count += 1
            session.expunge(node)
            site_name = site.name
        sender = Sender(peer_principal(node), peer_actor(node), node.site_id, node.ae_title)
        numbers = [p for p in PATIENTS if p[4 + site_index]]
        for index, (family, given, born, sex, *ids) in enumerate(numbers):
            patient = SyntheticPatient(
                f"{family}^{given}", ids[site_index], born.strftime("%Y%m%d"), sex
            )
            study = SyntheticStudy(
                seed=f"concilium-demo:{finess}:{ids[site_index]}",
                patient=patient,
                study_date=dt.date(2026, 11, 20) - dt.timedelta(days=7 * index),
                accession_number=f"DEMO-{ids[site_index]}",
                institution_name=site_name,
                referring_physician="BERNARD^SOPHIE",
                description="CORONAROGRAPHIE ET SCANNER" if index == 0 else "RADIO THORAX",
            )
            studies += 1
            with transaction(archive.sessions) as session:
                if study_by_uid(session, study.study_instance_uid) is not None:
                    continue
            with tempfile.TemporaryDirectory(prefix="concilium-demo-") as folder:
                paths = _files(Path(folder), study, index)
                for path in paths:
                    ingest_instance(archive, sender, [path.read_bytes()])
            added += 1
    return DemoStudies(nodes_count, studies, added)
