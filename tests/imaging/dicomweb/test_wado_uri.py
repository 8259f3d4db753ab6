"""WADO-URI (PS3.18 9): one object by its UIDs, as stored or rendered."""

from __future__ import annotations

import io

from PIL import Image

from .clients import uids


def test_wado_uri_gives_the_object_or_a_rendered_image(live, metz, samples):
    path = samples["ct"]
    study, series, instance = uids(path)
    params = {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": instance}
    dicom = metz._http_get(
        f"{live.url}/wado", params={**params, "contentType": "application/dicom"}
    )
    assert dicom.content == path.read_bytes()
    image = metz._http_get(f"{live.url}/wado", params={**params, "rows": "50"})
    assert image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (50, 50)
    missing = metz._session.get(f"{live.url}/wado", params={"requestType": "WADO"})
    assert missing.status_code == 400
