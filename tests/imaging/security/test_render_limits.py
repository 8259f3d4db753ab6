"""One reader cannot exhaust the server's memory by rendering or decoding: a viewport beyond
the output limit (DICOMweb ``rendered``, WADO-URI ``rows``/``columns``) and an instance whose
declared frame is beyond the decoded-size limit (rendered, its frames decoded by WADO-RS, or
transcoded by WADO-RS and WADO-URI) are refused with 413 problem details before any
decoding; the web side keeps answering, and so does the DICOM listener."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from concilium.imaging import ImagingProcess, nodes
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.web.context import process_of

from ..dicomweb.clients import ct

MULTIPART = 'multipart/related; type="application/dicom"; boundary=b'


def _stow(client, token: str, path: Path) -> None:  # type: ignore[no-untyped-def]
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + path.read_bytes() + b"\r\n--b--\r\n"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": MULTIPART}
    answer = client.post("/dicomweb/studies", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def _declaring_a_huge_frame(tmp: Path) -> Path:
    """A valid-looking RLE object whose header declares a 30000 x 30000 16-bit frame: its
    decoder would allocate 1.8 GB for it."""
    (small,) = ct(tmp / "huge", "render-huge", count=1, patient_id="MTZ-HUGE")
    ds = pydicom.dcmread(small)
    ds.compress(pydicom.uid.RLELossless)
    ds.Rows = ds.Columns = 30000
    out = tmp / "huge.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.fixture
def listener(app, world, runtime) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db, audit.SYSTEM, ae_title="METZ_CT", host="127.0.0.1", port=104,
            site_id=world.metz.id, allow_store=True,
        )  # fmt: skip
    server = DicomServer(process_of(app, ImagingProcess).archive, DimseSettings(port=0))
    server.start()
    yield server.port
    server.stop()


def test_oversized_renderings_are_refused_and_the_server_keeps_serving(
    app, client, world, runtime, listener, tmp_path
):
    tech = world.user("metz-tech", (world.metz, "technologist"))
    token = world.token(tech, "imaging:write", "imaging:read")
    headers = {"Authorization": f"Bearer {token}"}
    (small,) = ct(tmp_path / "small", "render-small", count=1, patient_id="MTZ-SMALL")
    huge = _declaring_a_huge_frame(tmp_path)
    _stow(client, token, small)
    _stow(client, token, huge)

    def instance(path: Path) -> str:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return (
            f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )

    def wado(path: Path, rows: int) -> str:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return (
            f"/wado?requestType=WADO&studyUID={ds.StudyInstanceUID}&seriesUID="
            f"{ds.SeriesInstanceUID}&objectUID={ds.SOPInstanceUID}&rows={rows}&columns={rows}"
        )

    attacks = [
        f"{instance(small)}/rendered?viewport=100000,100000",
        f"{instance(small)}/frames/1/rendered?viewport=60000,60000",
        f"{instance(small)}/thumbnail?viewport=50000,50000",
        f"{instance(small)}/rendered?viewport=70000,70000,0,0,1,1",
        wado(small, 100000),
        wado(small, 65000),
        f"{instance(huge)}/rendered",
        wado(huge, 64),
        wado(huge, 64).replace("&rows=64&columns=64", "&contentType=application/dicom")
        + "&transferSyntax=1.2.840.10008.1.2.1",
    ]
    # WADO-RS: the huge frame decoded to Explicit VR Little Endian, the instance and its
    # series transcoded (their pixel data decoded to be sent uncompressed).
    decoded = {**headers, "Accept": 'multipart/related; type="application/octet-stream"'}
    explicit = "transfer-syntax=1.2.840.10008.1.2.1"
    transcoded = {**headers, "Accept": f'multipart/related; type="application/dicom"; {explicit}'}
    series = instance(huge).rsplit("/instances/", 1)[0]
    requests = [(url, headers) for url in attacks] + [
        (f"{instance(huge)}/frames/1", decoded),
        (instance(huge), transcoded),
        (series, transcoded),
    ]
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        answers = list(pool.map(lambda r: client.get(r[0], headers=r[1]), requests))
    for (url, _), answer in zip(requests, answers, strict=True):
        assert answer.status_code == 413, (url, answer.status_code, answer.text[:200])
        assert answer.headers["content-type"].startswith("application/problem+json")

    # The web side still renders what fits, and the DICOM listener still stores.
    fine = client.get(f"{instance(small)}/rendered?viewport=64,64", headers=headers)
    assert fine.status_code == 200 and fine.headers["content-type"] == "image/jpeg"
    ae = AE(ae_title="METZ_CT")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", listener, ae_title="CONCILIUM")
    assert assoc.is_established
    (other,) = ct(tmp_path / "after", "render-after", count=1, patient_id="MTZ-AFTER")
    assert assoc.send_c_store(pydicom.dcmread(other)).Status == 0x0000
    assoc.release()


def test_decodes_are_bounded_and_a_reader_beyond_waits_then_gets_503(
    app, client, world, runtime, tmp_path, monkeypatch
):
    from threading import Event

    from concilium.imaging import render

    tech = world.user("metz-tech", (world.metz, "technologist"))
    token = world.token(tech, "imaging:write", "imaging:read")
    headers = {"Authorization": f"Bearer {token}"}
    (small,) = ct(tmp_path / "slot", "render-slot", count=1, patient_id="MTZ-SLOT")
    _stow(client, token, small)
    ds = pydicom.dcmread(small, stop_before_pixels=True)
    url = (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/rendered?viewport=16,16"
    )
    process_of(app, ImagingProcess).renderer = render.Renderer(
        render.RenderLimits(), concurrency=1, wait_seconds=0.2
    )
    decoding, release = Event(), Event()
    original = render.render

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        decoding.set()
        release.wait(10)
        return original(*args, **kwargs)

    monkeypatch.setattr(render, "render", slow)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(client.get, url, headers=headers)
        assert decoding.wait(10)
        second = client.get(url, headers=headers)
        release.set()
        assert first.result().status_code == 200
    assert second.status_code == 503
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.headers["retry-after"] == "5"  # RFC 9110 10.2.3: when to try again
    assert client.get(url, headers=headers).status_code == 200
