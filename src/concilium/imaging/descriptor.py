"""How the image archive plugs into the process assembly."""

from __future__ import annotations

from pathlib import Path

from concilium.imaging.actions import ImagingAction
from concilium.platform.i18n import N_
from concilium.platform.policy import actions_of
from concilium.platform.services import NavEntry, ServiceDescriptor

_HERE = Path(__file__).parent

SERVICE = ServiceDescriptor(
    name="imaging",
    summary="The image archive (PACS): DICOM and DICOMweb, viewers, sharing, de-identification.",
    actions=actions_of(ImagingAction),
    tables="concilium.imaging.tables",
    migrations=_HERE / "migrations",
    routers=(
        "concilium.imaging.dicomweb:router",
        "concilium.imaging.pages:router",
        "concilium.imaging.viewer:router",
        "concilium.imaging.ohif:router",
    ),
    documented_routers=("concilium.imaging.dicomweb:router",),
    commands="concilium.imaging.cli:dicom",
    nav=(
        NavEntry(ImagingAction.STUDY_READ, "/imaging", N_("Imaging"), 20),
        NavEntry(ImagingAction.AE_MANAGE, "/admin/imaging/aes", N_("DICOM nodes"), 90),
    ),
    templates=_HERE / "templates",
    static=_HERE / "static",
    locale=_HERE / "locale",
    runtime="concilium.imaging.process:ImagingProcess",
    middleware="concilium.imaging.dicomweb:install_cors",
)
