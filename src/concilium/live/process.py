"""What live sessions hold in a running process: the live state (media control plane,
websocket rooms, director locks, PTZ connections), the HLS outputs and recordings being
processed, the fed sources, the sessions service working on them, and the media server the
process supervises."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from concilium.imaging import ImagingProcess
from concilium.live import feeders, source_registry
from concilium.live.endpoints import networks_of
from concilium.live.hls import HlsBroadcasts
from concilium.live.hls_files import HlsSigner
from concilium.live.runtime import LiveRuntime, media_lifespan
from concilium.live.sessions import LiveSessions, MediaOutputs
from concilium.platform.db import transaction
from concilium.platform.encryption import load_or_create_key
from concilium.platform.runtime import Runtime
from concilium.platform.services import Processes


class LiveProcess:
    """The live service of one process, with one ordered life (see ``ServiceRuntime``)."""

    def __init__(self, runtime: Runtime, built: Processes) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.live = LiveRuntime()
        """Media control plane, rooms, locks and camera connections."""
        self.outputs = MediaOutputs(HlsBroadcasts(settings.data_dir))
        """HLS packagers and recordings in post-processing."""
        self.sources = feeders.SourceFeeds()
        """Feeders of IP cameras and cine loops."""
        self.hls_signer = HlsSigner(load_or_create_key(settings.data_dir, settings.secret_key))
        """Signs the audience's expiring HLS addresses, keyed from the installation's key."""
        self.sessions = LiveSessions(
            live=self.live,
            outputs=self.outputs,
            feeds=self.sources,
            archive=built.service(ImagingProcess).archive,
            database=runtime.sessions,
            data_dir=settings.data_dir,
            clock=runtime.now,
            box=runtime.box,
            device_networks=networks_of(settings.live_device_networks),
        )
        """Sessions going live, on program and ending, with everything that goes with it."""
        # Janus forgets its forwarders when it restarts: each program is forwarded again.
        hls = self.outputs.hls
        self.live.on_media_restart.append(lambda media: hls.restore(media.videoroom))

    def open(self) -> None:
        """Seal camera credentials still written in clear; rooms are made again at the
        next join."""
        with transaction(self.runtime.sessions) as db:
            source_registry.seal_clear_credentials(db, self.runtime.box)

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[None]:
        """Run Janus for the life of the server when configured; packagers and feeders stop
        before it."""
        async with AsyncExitStack() as stack:
            if self.runtime.settings.live_enabled:
                await stack.enter_async_context(media_lifespan(self.runtime.settings, self.live))
            stack.push_async_callback(self.sources.close)
            stack.push_async_callback(self.outputs.close)
            yield

    def close(self) -> None:
        """Nothing to release beyond what :meth:`serve` stopped."""
