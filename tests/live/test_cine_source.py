"""A DICOM XA cine loop from the archive replayed as a live source through the real Janus.

The loop is stored in an archive, authorised for the session's organiser, encoded to VP8 at
its own frame rate into a Streaming mountpoint, and watched by Chromium over WebRTC: the
frame rate Chromium decodes is measured against the object's native rate.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from sqlalchemy import select

from concilium import imaging
from concilium.imaging import Archive, Sender
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_xa_cine
from concilium.live import lifecycle, lookup, source_registry
from concilium.live.feeders import SourceFeeds
from concilium.live.janus_client import STREAMING
from concilium.live.media import LiveMedia
from concilium.live.sources import (
    DEFAULT_CINE_RATE,
    SourcePlan,
    SourceState,
    cine_frame_rate,
    load_cine,
    mountpoint_id,
    parse_cine_reference,
    plan_sources,
)
from concilium.platform import audit, i18n, patients
from concilium.platform.db import transaction
from concilium.platform.errors import InvalidInput
from concilium.platform.policy import Principal
from concilium.platform.tables import AuditEvent

from .webrtc_harness import chromium, open_harness, serve_harness

NATIVE_RATE = 25
"""Frame rate written in the test loop (Cine Rate and Frame Time): not the 15 fps default."""

# The page watches a Streaming mountpoint with the same Janus client code as the live pages.
STREAMING_PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>streaming harness</title>
<video autoplay muted playsinline></video>
<script type="module">
import { JanusSession } from "/static/live/janus-room.js";
const video = document.querySelector("video");
window.watch = async ({ apiUrl, token, id }) => {
  const session = await new JanusSession(apiUrl, token).create();
  const handle = await session.attach("janus.plugin.streaming");
  const offer = await session.message(handle, { request: "watch", id });
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addEventListener("track", (event) => { video.srcObject = new MediaStream([event.track]); });
  await pc.setRemoteDescription(offer.jsep);
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
  await session.message(handle, { request: "start" },
                        { type: "answer", sdp: pc.localDescription.sdp });
  window.pc = pc;
  window.session = session;
  return offer.jsep.sdp;
};
window.inbound = async () => {
  for (const report of (await window.pc.getStats()).values()) {
    if (report.type === "inbound-rtp" && report.kind === "video") {
      return { decoded: report.framesDecoded ?? 0, received: report.framesReceived ?? 0,
               dropped: report.framesDropped ?? 0, at: performance.now() };
    }
  }
  return null;
};
window.grab = () => {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas.toDataURL("image/png");
};
window.hangUp = async () => { window.pc.close(); await window.session.destroy(); };
window.harnessReady = true;
</script>
"""


@pytest.fixture
def harness_url() -> Iterator[str]:
    with serve_harness(STREAMING_PAGE) as url:
        yield url


# --- without a media server ----------------------------------------------------------------


def test_the_native_frame_rate_comes_from_the_cine_module() -> None:
    ds = Dataset()
    assert cine_frame_rate(ds) == DEFAULT_CINE_RATE == 15
    ds.RecommendedDisplayFrameRate = 12
    assert cine_frame_rate(ds) == 12
    ds.FrameTime = "33.333"
    assert cine_frame_rate(ds) == 30.0
    ds.CineRate = 25
    assert cine_frame_rate(ds) == 25
    ds.CineRate, ds.FrameTime, ds.RecommendedDisplayFrameRate = 0, "0", 500
    assert cine_frame_rate(ds) == DEFAULT_CINE_RATE


def test_a_cine_reference_names_study_series_and_optionally_the_instance() -> None:
    ref = parse_cine_reference(" 1.2.3/1.2.3.4/1.2.3.4.5 ")
    assert (ref.study_uid, ref.series_uid, ref.sop_uid) == ("1.2.3", "1.2.3.4", "1.2.3.4.5")
    assert parse_cine_reference("1.2/1.3").sop_uid is None
    for bad in ("1.2", "1.2/1.3/1.4/1.5", "1.2/../1.3", "1.2/*"):
        with pytest.raises(InvalidInput):
            parse_cine_reference(bad)


def test_a_compressed_colour_ultrasound_loop_is_presented_at_its_frame_time() -> None:
    # pydicom's shipped US cine: 30 JPEG baseline YBR frames, Frame Time 33.333 ms.
    path = get_testdata_file("examples_ybr_color.dcm", download=False)
    assert path is not None, "pydicom ships examples_ybr_color.dcm"
    loop = load_cine(str(path))
    assert (loop.count, loop.height, loop.width, loop.pix_fmt) == (30, 240, 320, "rgb24")
    assert loop.frame_rate == 30.0
    assert (loop.frames[0] != loop.frames[15]).any()


def test_a_single_frame_is_not_a_cine_loop(tmp_path: Path) -> None:
    path = generate_xa_cine(tmp_path, 2, rows=64, columns=64)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 1
    ds.PixelData = ds.PixelData[: 64 * 64]
    ds.save_as(tmp_path / "one.dcm")
    with i18n.using_locale("en"), pytest.raises(InvalidInput, match="single frame"):
        load_cine(tmp_path / "one.dcm")


# --- from the archive, through Janus, to Chromium ------------------------------------------


def _store_cine(world, archive: Archive, tmp_path: Path) -> tuple[str, int, int]:
    """An XA loop stored at Metz; a Metz session showing it; a Briey session trying to."""
    path = generate_xa_cine(
        tmp_path / "xa",
        30,
        study=SyntheticStudy(seed="cine-source"),
        rows=160,
        columns=160,
        frames_per_second=NATIVE_RATE,
    )
    technologist = Principal(
        user_id=0, username="cathlab", roles={world.metz.id: frozenset({"technologist"})}
    )
    sender = Sender(
        technologist, audit.Actor(None, "cathlab", site_id=world.metz.id), world.metz.id
    )
    cardiologist = world.user("metz-cardio", (world.metz, "specialist"))
    outsider = world.user("briey-cardio", (world.briey, "specialist"))
    with transaction(world.runtime.sessions) as db:
        # The loop's patient, known at Metz: the Metz session is about them.
        patient = patients.create_patient(
            db,
            audit.Actor(cardiologist.id, cardiologist.username),
            world.metz.id,
            SyntheticPatient().patient_id,
            patients.Demographics("Doe", "Jane"),
        ).id
    stored = imaging.ingest_instance(archive, sender, [path.read_bytes()])
    reference = "/".join(
        (stored.study_instance_uid, stored.series_instance_uid, stored.sop_instance_uid)
    )
    now = world.runtime.now()
    ids = []
    with transaction(world.runtime.sessions) as db:
        for user, site in ((cardiologist, world.metz), (outsider, world.briey)):
            actor = audit.Actor(user.id, user.username)
            live = lifecycle.create_session(
                db,
                actor,
                kind="supervision",
                title="Angioplasty LAD",
                site_id=site.id,
                scheduled_at=now,
                now=now,
                patient_id=patient if site is world.metz else None,
            )
            # As when each organiser added it (the page authorises it for them first);
            # going live authorises it again for whoever added it.
            source_registry.add_source(
                db,
                actor,
                live,
                name="LAO cine",
                kind="dicom_cine",
                reference=reference,
                cine=source_registry.CineGrant(reference, user.id),
            )
            lifecycle.start(db, actor, live, now, teaching_consent=False)
            ids.append(live.id)
    return reference, ids[0], ids[1]


def _plans(world, archive: Archive, session_id: int) -> tuple[int, list[SourcePlan]]:
    with transaction(world.runtime.sessions) as db:
        live = lookup.get_session(db, session_id)
        assert live.janus_room_id is not None
        plans = plan_sources(
            db, archive, live, source_registry.sources(db, live), world.runtime.now()
        )
        return live.janus_room_id, plans


def _retrievals(world) -> list[tuple[str, str]]:
    with transaction(world.runtime.sessions) as db:
        rows = db.execute(
            select(AuditEvent.actor, AuditEvent.outcome).where(
                AuditEvent.action == "study.retrieve"
            )
        ).all()
        return [(actor, outcome) for actor, outcome in rows]


@pytest.mark.anyio
@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_xa_cine_loop_from_the_archive_plays_live_at_its_native_frame_rate(
    world, live_media: LiveMedia, harness_url: str, tmp_path: Path
) -> None:
    archive = Archive(tmp_path / "images", world.runtime.sessions, world.runtime.bus)
    _, metz_session, briey_session = await asyncio.to_thread(_store_cine, world, archive, tmp_path)
    room, plans = await asyncio.to_thread(_plans, world, archive, metz_session)
    with i18n.using_locale("en"):  # the refusal is written in the language of who asks
        _, refused = await asyncio.to_thread(_plans, world, archive, briey_session)

    # Only an organiser who may read the study gets its loop; both attempts are audited.
    assert [p.cine_path is not None for p in plans] == [True]
    # A study the organiser may not read looks absent, as in any retrieval.
    assert refused[0].cine_path is None
    assert refused[0].refusal == "No such cine loop in the archive."
    retrievals = await asyncio.to_thread(_retrievals, world)
    assert ("metz-cardio", "success") in retrievals
    assert ("briey-cardio", "failure") in retrievals

    feeds = SourceFeeds()
    feeds.launch(live_media, metz_session, room, plans)
    feeds.launch(live_media, briey_session, room + 1, refused)
    source_id = plans[0].source_id
    status = feeds.statuses(metz_session)[source_id]
    for _ in range(100):
        if status.state == SourceState.LIVE:
            break
        await asyncio.sleep(0.1)
    assert status.state == SourceState.LIVE, status
    assert status.frame_rate == NATIVE_RATE and status.codec == "vp8"
    assert status.mountpoint_id == mountpoint_id(source_id)
    assert feeds.mountpoints(room) == {status.mountpoint_id}
    assert feeds.statuses(briey_session)[refused[0].source_id].state == SourceState.REFUSED
    mountpoint = live_media.registry.mountpoints[status.mountpoint_id]

    # A browser watches the mountpoint (the test mints its own Streaming token).
    token = "cine-viewer-token-0123456789"
    await live_media.admin.add_token(token, plugins=(STREAMING,))
    try:
        async with chromium(tmp_path / "profile") as context:
            page = await open_harness(context, harness_url)
            offer = await page.evaluate(
                "cfg => window.watch(cfg)",
                {
                    "apiUrl": live_media.config.api_url,
                    "token": token,
                    "id": status.mountpoint_id,
                },
            )
            video = "document.querySelector('video')"
            await page.wait_for_function(f"{video}.currentTime > 0.5", timeout=20_000)
            first_picture = await page.evaluate("window.grab()")
            before = await page.evaluate("window.inbound()")
            sent_before, late_before = status.frames_sent, status.late_frames
            await asyncio.sleep(5.0)
            after = await page.evaluate("window.inbound()")
            sent_after = status.frames_sent
            second_picture = await page.evaluate("window.grab()")
            size = await page.evaluate(f"[{video}.videoWidth, {video}.videoHeight]")
            info = await live_media.streaming.info(mountpoint)
            await page.evaluate("window.hangUp()")
    finally:
        await feeds.stop(metz_session)
        await feeds.stop(briey_session)
        await live_media.admin.remove_token(token)

    assert "VP8/90000" in offer
    assert size == [160, 160]
    pictures = [base64.b64decode(p.split(",", 1)[1]) for p in (first_picture, second_picture)]
    assert pictures[0] != pictures[1], "the picture does not move"
    assert all(m.get("age_ms", 10_000) < 1000 for m in info.get("media", [])), info

    seconds = (after["at"] - before["at"]) / 1000.0
    decoded_rate = (after["decoded"] - before["decoded"]) / seconds
    received_rate = (after["received"] - before["received"]) / seconds
    sent_rate = (sent_after - sent_before) / seconds
    print(
        f"cine {NATIVE_RATE} fps: sent {sent_rate:.2f} fps, received {received_rate:.2f} fps, "
        f"decoded {decoded_rate:.2f} fps over {seconds:.1f} s, dropped "
        f"{after['dropped'] - before['dropped']}, late {late_before} then {status.late_frames}"
    )
    # Every frame is paced out at the native rate, and every frame arrives and is decoded
    # (6 % tolerance for the moments at which the counters were read).
    assert abs(sent_rate - NATIVE_RATE) <= NATIVE_RATE * 0.06
    assert abs(received_rate - NATIVE_RATE) <= NATIVE_RATE * 0.06
    assert abs(decoded_rate - NATIVE_RATE) <= NATIVE_RATE * 0.06
    # Frames are never rushed to catch up: the sender stays at the native rate even when a
    # stall delayed a frame (``late``, printed above).
    assert status.frames_sent > NATIVE_RATE * 5

    # Ending the session stops the encoder and removes the mountpoint.
    assert status.state == SourceState.STOPPED
    assert status.mountpoint_id is None
    assert status.mountpoint_id not in live_media.registry.mountpoints
    assert mountpoint_id(source_id) not in {
        int(m["id"]) for m in await live_media.streaming.list_mountpoints()
    }
    assert feeds.statuses(metz_session) == {}
