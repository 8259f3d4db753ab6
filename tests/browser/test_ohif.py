"""A technologist opens a CT study in the OHIF Viewer v3 served at /ohif: the viewer lists
only the studies of their own site (the archive's authorisation applies through DICOMweb),
and the slice is drawn on the viewport's canvas.

Rendering: OHIF draws through cornerstone3D, which needs WebGL: with WebGL switched off
(``--disable-webgl``) the study list works but no slice is ever drawn. The shared test
browser runs with ``--disable-gpu``; Debian's headless Chromium 156 still offers WebGL 2
there through SwiftShader, its software GPU, but Chromium is phasing out that automatic
fallback. This test's own browser therefore asks for it explicitly
(``--use-angle=swiftshader --enable-unsafe-swiftshader``), and first checks that WebGL 2
is there, so that a browser without it fails with that reason and not a blank viewport.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series

from .browsing import CHROMIUM_ARGS, launch_chromium, sign_in

METZ = ("CHR Metz-Thionville", "570005165")
BRIEY = ("CH Briey", "540000049")
PASSWORD = "ohif-viewer-pass-1"
# The arguments of the shared test browser, plus WebGL through SwiftShader (see above).
CHROMIUM_WEBGL_ARGS = [*CHROMIUM_ARGS, "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
WEBGL2 = "() => !!document.createElement('canvas').getContext('webgl2')"

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _only_what_the_viewer_needs(monkeypatch):
    """The server runs without the DICOM listener and the media server: studies arrive by
    STOW-RS, and a fixed DICOM port may be taken by another server on the machine."""
    monkeypatch.setenv("CONCILIUM_DICOM_PORT", "0")
    monkeypatch.setenv("CONCILIUM_LIVE_ENABLED", "false")


@pytest.fixture(scope="module")
def webgl_browser():  # type: ignore[no-untyped-def]
    """Chromium with WebGL in software, for this module."""
    yield from launch_chromium(CHROMIUM_WEBGL_ARGS)


def _stow(server, token: str, study: SyntheticStudy, directory: Path) -> str:
    """Store a small CT series by STOW-RS, as a modality gateway would; its study UID."""
    files = generate_ct_series(directory, 3, study=study, rows=128, columns=128)
    boundary = "ohif-test"
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + f.read_bytes()
        + b"\r\n"
        for f in files
    )
    body += f"--{boundary}--\r\n".encode()
    response = httpx.post(
        f"{server.url}/dicomweb/studies",
        content=body,
        headers={
            "authorization": f"Bearer {token}",
            "content-type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "accept": "application/dicom+json",
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return study.study_instance_uid


def provision(server, tmp_path: Path) -> tuple[str, str]:
    """Two sites, a technologist at each; each stores one CT study. Metz's and Briey's UIDs."""
    for name, finess in (METZ, BRIEY):
        server.create_site(name, finess)
    uids = []
    for username, finess, patient in (
        ("metz-tech", METZ[1], SyntheticPatient("MARTIN^PAUL", "MTZ-7")),
        ("briey-tech", BRIEY[1], SyntheticPatient("SECRET^BRIEY", "BRY-9")),
    ):
        server.create_user(username, f"technologist@{finess}", password=PASSWORD)
        token = server.create_token(username, "modality", "imaging:write")
        study = SyntheticStudy(f"ohif-{username}", patient, description=f"CT of {username}")
        uids.append(_stow(server, token, study, tmp_path / username))
    return uids[0], uids[1]


def wait_until(page: Page, expression: str, timeout: float) -> object:
    """Poll a page function until it returns something (``wait_for_function`` would compile
    it with ``eval``, which the viewer's content security policy rightly forbids)."""
    deadline = time.monotonic() + timeout
    while not (result := page.evaluate(expression)):
        if time.monotonic() > deadline:
            raise AssertionError(f"still nothing after {timeout} s: {expression}")
        time.sleep(0.5)
    return result


DRAWN_PIXELS = """
() => {
  const canvases = [...document.querySelectorAll('canvas.cornerstone-canvas')]
    .filter(c => c.width > 64 && c.height > 64);
  for (const canvas of canvases) {
    const copy = document.createElement('canvas');
    copy.width = canvas.width; copy.height = canvas.height;
    const context = copy.getContext('2d');
    context.drawImage(canvas, 0, 0);
    const data = context.getImageData(0, 0, copy.width, copy.height).data;
    const levels = new Set();
    for (let i = 0; i < data.length; i += 4 * 7) levels.add(data[i]);
    if (levels.size > 16) return {width: canvas.width, height: canvas.height, levels: levels.size};
  }
  return null;
}
"""


def test_a_study_opens_in_ohif_and_its_image_is_drawn(server, webgl_browser, artifacts, tmp_path):
    metz_study, _briey_study = provision(server, tmp_path)
    context = webgl_browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto("about:blank")
    assert page.evaluate(WEBGL2), "this Chromium offers no WebGL 2, which the viewer needs"

    # Signed out, the viewer is the sign-in page.
    page.goto(f"{server.url}/ohif/viewer?StudyInstanceUIDs={metz_study}")
    assert page.get_by_role("button", name="Sign in").is_visible()
    assert "/login" in page.url

    failed: list[str] = []
    frames: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("response", lambda r: frames.append(r.url) if "/frames/" in r.url else None)
    sign_in(page, "metz-tech", PASSWORD, base_url=server.url)

    # The study list (one QIDO-RS search of the viewer) shows Metz's study, never Briey's.
    page.goto(f"{server.url}/ohif/")
    page.get_by_text("MARTIN, PAUL").wait_for(timeout=60_000)
    page.get_by_text("CT of metz-tech").wait_for()
    page.screenshot(path=str(artifacts / "ohif-study-list.png"))
    listed = page.content()
    assert "SECRET" not in listed and "CT of briey-tech" not in listed

    page.goto(f"{server.url}/ohif/viewer?StudyInstanceUIDs={metz_study}")
    drawn = wait_until(page, DRAWN_PIXELS, 90)
    page.screenshot(path=str(artifacts / "ohif-viewer.png"))
    assert isinstance(drawn, dict) and drawn["levels"] > 16, drawn
    # The pixels came from this archive's WADO-RS, and every request the viewer made (its
    # own files, QIDO-RS, metadata, frames) was answered.
    assert any(f.startswith(f"{server.url}/dicomweb/studies/{metz_study}/") for f in frames)
    assert failed == []
    context.close()
