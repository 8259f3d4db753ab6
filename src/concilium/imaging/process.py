"""What the image archive holds in a running process: one archive (files, index, the
process's event bus) and, when the process serves DICOM, the listener."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from anyio import to_thread

from concilium.imaging.archive import Archive, DuplicatePolicy
from concilium.imaging.dimse import DicomServer
from concilium.imaging.dimse_services import DimseExtension
from concilium.imaging.render import Renderer, RenderLimits
from concilium.imaging.writers import Lease
from concilium.platform.runtime import Runtime
from concilium.platform.services import Processes


def archive_for(runtime: Runtime) -> Archive:
    """The archive of this installation, ``<data_dir>/images``, on the process's database,
    event bus and clock."""
    settings = runtime.settings
    return Archive(
        settings.data_dir / "images",
        runtime.sessions,
        runtime.bus,
        duplicate_policy=DuplicatePolicy(settings.dicom_duplicate_policy),
        clock=runtime.now,
        lease=Lease(settings.archive_writer_lease_seconds, settings.archive_writer_renew_seconds),
    )


class ImagingProcess:
    """The archive and its DICOM listener, with one ordered life (see ``ServiceRuntime``)."""

    def __init__(self, runtime: Runtime, built: Processes) -> None:
        self.runtime = runtime
        self.archive = archive_for(runtime)
        """The one archive of the process: DICOM, DICOMweb, pages and other services."""
        settings = runtime.settings
        self.renderer = Renderer(
            RenderLimits(settings.render_max_output_pixels, settings.render_max_decoded_bytes),
            settings.render_concurrency,
            settings.render_wait_seconds,
        )
        """Renders frames for DICOMweb and WADO-URI within the settings' limits."""
        self.dicom: DicomServer | None = None
        """The DICOM listener, while the process serves it (``dicom_port`` not 0)."""
        self._dimse_services: list[DimseExtension] = []

    def add_dimse_service(self, extension: DimseExtension) -> None:
        """Serve another service's SOP class on the archive's DICOM listener, to the nodes
        the listener admits; before `serve` starts it."""
        if self.dicom is not None:
            raise RuntimeError("the DICOM listener is already serving")
        if any(e.sop_class_uid == extension.sop_class_uid for e in self._dimse_services):
            raise ValueError(f"SOP class {extension.sop_class_uid} is already served")
        self._dimse_services.append(extension)

    @property
    def dimse_services(self) -> Sequence[DimseExtension]:
        """The SOP classes other services added, in the order added."""
        return tuple(self._dimse_services)

    def open(self) -> None:
        """Register as a writer of the store, then resolve what writers that died left
        pending (never what a live one, on any host, is writing)."""
        self.archive.open_for_writing()
        self.archive.recover()

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[None]:
        """Listen for DICOM associations for the life of the server, when configured."""
        from concilium.imaging.cli import start_dicom_server

        settings = self.runtime.settings
        if settings.dicom_port:
            self.dicom = await to_thread.run_sync(
                lambda: start_dicom_server(
                    settings, archive=self.archive, extensions=self.dimse_services
                )
            )
        try:
            yield
        finally:
            if self.dicom is not None:
                await to_thread.run_sync(self.dicom.stop)
                self.dicom = None

    def close(self) -> None:
        self.archive.close()
