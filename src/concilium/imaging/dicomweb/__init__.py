"""DICOMweb (PS3.18) over the archive: one module per transaction, one router for them all.

- `stow`: STOW-RS Store Instances, PS3.18 10.5 (``POST /dicomweb/studies[/{study}]``);
- `qido`: QIDO-RS Search, PS3.18 10.6 (``GET /dicomweb/studies``, ``/series``, ``/instances``);
- `wado_rs`: WADO-RS Retrieve, PS3.18 10.4 (instances, metadata, bulk data, frames, rendered
  images and thumbnails under ``/dicomweb/studies/{study}``);
- `wado_uri`: WADO-URI, PS3.18 9 (``GET /wado``);
- `cors`: cross-origin access to those paths for viewers served elsewhere.

Each is a thin HTTP adapter over the archive's domain modules (`concilium.imaging.ingest`,
`query`, `retrieve`): every route authenticates through `concilium.web.context.gate`, the
domain asks the policy about each study, and each request leaves one audit entry of what it
stored or read.
"""

from __future__ import annotations

from fastapi import APIRouter

from concilium.imaging.dicomweb import qido, stow, wado_rs, wado_uri
from concilium.imaging.dicomweb.cors import DicomwebCORSMiddleware, install_cors
from concilium.imaging.dicomweb.resources import archive_of

__all__ = ["DicomwebCORSMiddleware", "archive_of", "install_cors", "router"]

router = APIRouter(tags=["dicomweb"])
"""Every DICOMweb route, under ``/dicomweb`` and ``/wado``."""
for _transaction in (stow, qido, wado_rs, wado_uri):
    router.include_router(_transaction.router)
