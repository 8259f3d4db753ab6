"""A radiologist reads a study in the built-in viewer on a phone and a tablet: series
thumbnails, slice scrolling, window presets, zoom, a distance in millimetres and cine
playback of a multi-frame ultrasound loop, all drawn from the archive's DICOMweb routes."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pydicom
import pytest
from playwright.sync_api import Page, expect
from pydicom.data import get_testdata_file
from sqlalchemy import func, select

from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from concilium.platform.audit import AuditEvent
from concilium.platform.db import make_engine, make_sessionmaker

from . import browsing

pytestmark = pytest.mark.browser

METZ = ("CHR Metz-Thionville", "570005165")
BRIEY = ("CH Briey", "540000049")
PASSWORD = "viewer-pages-pass-1"
CT_SLICES = 12
CT_SPACING_MM = 350.0 / 512  # what generate_ct_series writes as Pixel Spacing
ULTRASOUND = "examples_ybr_color.dcm"  # 30 frames, JPEG baseline, Frame Time 33.333 ms
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 820, "height": 1180}
# A digest of every pixel drawn on the viewer's canvas.
CANVAS_DIGEST = """() => {
  const c = document.querySelector('[data-canvas]');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0, lit = 0;
  for (let i = 0; i < d.length; i += 4) {
    h = (Math.imul(h, 31) + d[i] + 7 * d[i + 1]) | 0;
    lit += d[i] > 0;
  }
  return lit ? h : 0;
}"""


@pytest.fixture(autouse=True)
def _no_media_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The viewer needs neither the media server nor the DICOM listener."""
    monkeypatch.setenv("CONCILIUM_DICOM_PORT", "0")
    monkeypatch.setenv("CONCILIUM_LIVE_ENABLED", "false")


def provision(server, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Two sites, a radiologist at each, and Metz's CT and ultrasound studies imported."""
    for name, finess in (METZ, BRIEY):
        server.create_site(name, finess)
    keys = {
        username: server.create_user(
            username, f"radiologist@{finess}", password=PASSWORD, totp=True
        )
        for username, finess in (("rad", METZ[1]), ("other", BRIEY[1]))
    }
    study = SyntheticStudy(seed="viewer-test")
    incoming = tmp_path / "incoming"
    generate_ct_series(incoming / "ct", CT_SLICES, study=study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ultrasound = get_testdata_file(ULTRASOUND, download=False)
    assert ultrasound, f"pydicom ships {ULTRASOUND}"
    (incoming / "us").mkdir()
    shutil.copy(str(ultrasound), incoming / "us" / ULTRASOUND)
    out = server.cli("dicom", "import", str(incoming), "--site", METZ[1])
    assert f"{CT_SLICES + 1} instances stored, 0 refused" in out, out
    us_study = str(pydicom.dcmread(str(ultrasound), stop_before_pixels=True).StudyInstanceUID)
    return {"ct": study.study_instance_uid, "us": us_study, **keys}


def sign_in(page: Page, username: str, key: str) -> None:
    browsing.sign_in(page, username, PASSWORD, totp_key=key)


def digest(page: Page) -> int:
    return int(page.evaluate(CANVAS_DIGEST))


def wait_redrawn(page: Page, before: int) -> int:
    """Wait until the canvas shows other pixels than ``before``; the new digest."""
    page.wait_for_function(
        f"(before) => {{ const h = ({CANVAS_DIGEST})(); return h !== 0 && h !== before; }}",
        arg=before,
        timeout=10_000,
    )
    return digest(page)


def no_horizontal_overflow(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def test_radiologist_reads_a_ct_series_on_a_tablet(server, browser, artifacts, tmp_path):
    facts = provision(server, tmp_path)
    context = browser.new_context(viewport=TABLET, base_url=server.url, has_touch=True)
    page = context.new_page()
    sign_in(page, "rad", facts["rad"])
    page.goto(f"/imaging/studies/{facts['ct']}/viewer")
    viewer = page.locator("#viewer")

    # The series strip shows a drawn thumbnail of the CT series.
    thumbnail = page.locator("[data-series] img").first
    expect(thumbnail).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-series] img');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    expect(page.locator("[data-series]").first).to_contain_text(f"{CT_SLICES} images")
    slice_label = page.locator("[data-overlay-slice]")
    expect(slice_label).to_have_text(f"Image {CT_SLICES // 2 + 1} / {CT_SLICES}")
    first = wait_redrawn(page, 0)

    # Scrolling: arrow key, then the mouse wheel, each move one slice and redraw the image.
    canvas = page.locator("[data-canvas]")
    canvas.focus()
    page.keyboard.press("ArrowDown")
    expect(slice_label).to_have_text(f"Image {CT_SLICES // 2 + 2} / {CT_SLICES}")
    second = wait_redrawn(page, first)
    box = canvas.bounding_box()
    assert box is not None
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.wheel(0, 120)
    expect(slice_label).to_have_text(f"Image {CT_SLICES // 2 + 3} / {CT_SLICES}")
    third = wait_redrawn(page, second)
    page.get_by_role("button", name="Previous slice").click()
    expect(slice_label).to_have_text(f"Image {CT_SLICES // 2 + 2} / {CT_SLICES}")
    wait_redrawn(page, third)

    # Window presets: the object's own window first, then the lung window.
    window_label = page.locator("[data-overlay-window]")
    expect(window_label).to_have_text("W 400 / L 40")
    before = digest(page)
    page.get_by_label("Window preset").select_option(label="Lung (-600 / 1500)")
    expect(window_label).to_have_text("W 1500 / L -600")
    lung = wait_redrawn(page, before)
    page.get_by_label("Window preset").select_option(value="default")
    expect(window_label).to_have_text("W 400 / L 40")
    default = wait_redrawn(page, lung)
    # Dragging to the right in the window tool widens the window.
    page.get_by_role("button", name="Window", exact=True).click()
    page.mouse.move(*centre)
    page.mouse.down()
    page.mouse.move(centre[0] + 100, centre[1], steps=5)
    page.mouse.up()
    expect(window_label).to_have_text("W 600 / L 40")
    wait_redrawn(page, default)
    page.get_by_label("Window preset").select_option(value="default")
    expect(window_label).to_have_text("W 400 / L 40")

    # Zoom: the drawn scale grows by the zoom step, then fits again.
    fit_scale = min(box["width"], box["height"]) / 512
    assert float(viewer.get_attribute("data-scale") or 0) == pytest.approx(fit_scale, rel=0.01)
    zoom_label = page.locator("[data-overlay-zoom]")
    fit_text = zoom_label.inner_text()
    before = digest(page)
    page.get_by_role("button", name="Zoom in").click()
    expect(zoom_label).not_to_have_text(fit_text)
    assert float(viewer.get_attribute("data-scale") or 0) == pytest.approx(
        fit_scale * 1.25, rel=0.01
    )
    wait_redrawn(page, before)
    page.screenshot(path=str(artifacts / "viewer-ct-zoomed-tablet.png"), full_page=True)
    page.get_by_role("button", name="Fit").click()
    expect(zoom_label).to_have_text(fit_text)

    # Measurement: a 200-pixel drag on screen is 200 / scale image pixels at Pixel Spacing.
    page.get_by_role("button", name="Measure").click()
    start = (centre[0] - 100, centre[1] + 20)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 120, start[1] + 80, steps=5)
    page.mouse.move(start[0] + 160, start[1] + 120, steps=5)
    page.mouse.up()
    measured = page.locator("[data-overlay-measure]")
    expect(measured).to_contain_text("mm")
    value = float(re.search(r"([\d.]+) mm", measured.inner_text()).group(1))  # type: ignore[union-attr]
    expected = (160**2 + 120**2) ** 0.5 / fit_scale * CT_SPACING_MM
    assert value == pytest.approx(expected, rel=0.02), (value, expected)
    page.screenshot(path=str(artifacts / "viewer-ct-measure-tablet.png"), full_page=True)
    assert no_horizontal_overflow(page) <= 0

    page.set_viewport_size(PHONE)
    expect(slice_label).to_be_visible()
    page.wait_for_function("() => document.querySelector('#viewer').dataset.scale < 1")
    assert no_horizontal_overflow(page) <= 0
    page.screenshot(path=str(artifacts / "viewer-ct-phone.png"), full_page=True)

    # Opening the study is in the audit trail as a view, by this person.
    engine = make_engine(f"sqlite:///{server.data_dir / 'concilium.db'}")
    try:
        with make_sessionmaker(engine)() as db:
            views = db.execute(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "study.view", AuditEvent.object_id == facts["ct"])
            ).scalar_one()
    finally:
        engine.dispose()
    assert views == 1
    context.close()


def test_cine_loop_plays_at_the_objects_frame_rate(server, browser, artifacts, tmp_path):
    facts = provision(server, tmp_path)
    context = browser.new_context(viewport=TABLET, base_url=server.url, has_touch=True)
    page = context.new_page()
    sign_in(page, "rad", facts["rad"])
    page.goto(f"/imaging/studies/{facts['us']}/viewer")
    viewer = page.locator("#viewer")
    slice_label = page.locator("[data-overlay-slice]")
    expect(slice_label).to_have_text("Frame 1 / 30")
    # Frame Time 33.333 ms: 30 frames a second.
    expect(page.get_by_role("spinbutton", name="fps")).to_have_value("30")
    expect(viewer).to_have_attribute("data-frame-rate", "30")
    wait_redrawn(page, 0)
    play = page.get_by_role("button", name="Play")
    play.click()
    expect(viewer).to_have_attribute("data-playing", "true")
    # The loop advances on its own, well beyond the first few frames.
    page.wait_for_function(
        "() => Number(document.querySelector('#viewer').dataset.index) >= 10", timeout=10_000
    )
    page.screenshot(path=str(artifacts / "viewer-cine-tablet.png"), full_page=True)
    page.get_by_role("button", name="Pause").click()
    expect(viewer).to_have_attribute("data-playing", "false")
    stopped_at = viewer.get_attribute("data-index")
    page.wait_for_timeout(300)
    assert viewer.get_attribute("data-index") == stopped_at
    # Without Pixel Spacing, a length is given in pixels.
    page.get_by_role("button", name="Measure").click()
    box = page.locator("[data-canvas]").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 100, steps=4)
    page.mouse.up()
    expect(page.locator("[data-overlay-measure]")).to_have_text(re.compile(r"^Distance [\d.]+ px$"))
    assert no_horizontal_overflow(page) <= 0
    page.set_viewport_size(PHONE)
    expect(slice_label).to_be_visible()
    assert no_horizontal_overflow(page) <= 0
    page.screenshot(path=str(artifacts / "viewer-cine-phone.png"), full_page=True)
    context.close()


def test_another_sites_study_is_not_found(server, browser, tmp_path):
    facts = provision(server, tmp_path)
    context = browser.new_context(viewport=PHONE, base_url=server.url)
    page = context.new_page()
    sign_in(page, "other", facts["other"])
    response = page.goto(f"/imaging/studies/{facts['ct']}/viewer")
    assert response is not None and response.status == 404
    expect(page.locator("#viewer")).to_have_count(0)
    context.close()
