"""The OHIF viewer at /ohif: moved from the root to /ohif, configured for this server's
DICOMweb only, behind sign-in, and explicit about a missing install."""

from __future__ import annotations

import json
import re

import pytest

from concilium.imaging.ohif import MOUNT


@pytest.fixture
def signed_in(app, world):  # type: ignore[no-untyped-def]
    if not (world.runtime.settings.ohif_dir / "index.html").is_file():
        pytest.fail(
            f"the OHIF viewer is not installed in {world.runtime.settings.ohif_dir}: make ohif"
        )
    browser = world.client(app)
    world.sign_in(browser, world.user("metz-tech", (world.metz, "technologist")))
    return browser


def test_the_viewer_page_loads_everything_from_under_ohif(signed_in):
    page = signed_in.get("/ohif")
    assert page.status_code == 200
    assert 'window.PUBLIC_URL="/ohif/"' in page.text
    assert 'window.PUBLIC_URL="/"' not in page.text
    roots = re.findall(r'\b(?:href|src)="(/[^"]*)"', page.text)
    assert roots and all(r.startswith(f"{MOUNT}/") for r in roots)


def test_the_viewer_has_its_own_content_security_policy(signed_in):
    page = signed_in.get("/ohif/")
    policies = page.headers.get_list("content-security-policy")
    assert len(policies) == 1
    policy = policies[0]
    # The inline scripts are allowed by hash, WebAssembly may compile; nothing else is opened.
    assert len(re.findall(r"'sha256-[A-Za-z0-9+/=]+'", policy)) == 2
    assert "'wasm-unsafe-eval'" in policy and "'unsafe-eval'" not in policy
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    # Its scripts (workers take their policy from them) carry the same policy.
    config = signed_in.get("/ohif/app-config.js")
    assert "'wasm-unsafe-eval'" in config.headers["content-security-policy"]
    # Other pages keep the strict default.
    assert "wasm" not in signed_in.get("/").headers["content-security-policy"]


def test_the_configuration_names_only_this_servers_dicomweb(signed_in):
    response = signed_in.get("/ohif/app-config.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    prefix = "window.config = "
    assert response.text.startswith(prefix)
    config = json.loads(response.text[len(prefix) :].rstrip().rstrip(";"))
    assert config["routerBasename"] == "/ohif"
    (source,) = config["dataSources"]
    settings = source["configuration"]
    assert settings["qidoRoot"] == settings["wadoRoot"] == "/dicomweb"
    assert settings["imageRendering"] == settings["thumbnailRendering"] == "wadors"
    assert settings["supportsFuzzyMatching"] and settings["enableStudyLazyLoad"]
    assert "http" not in response.text  # same origin, no external URL


def test_scripts_and_style_sheets_load_their_files_from_under_ohif(signed_in):
    page = signed_in.get("/ohif").text
    bundle = re.search(r'src="/ohif/(app\.bundle\.[0-9a-f]+\.js)"', page)
    assert bundle
    script = signed_in.get(f"/ohif/{bundle.group(1)}")
    assert script.status_code == 200
    assert '__webpack_require__.p = "/ohif/";' in script.text
    assert '__webpack_require__.p = "/";' not in script.text
    style = signed_in.get("/ohif/app.bundle.css").text
    assert "url(/ohif/" in style and "url(/" not in style.replace("url(/ohif/", "")
    wasm = next(p.name for p in signed_in.app.state.runtime.settings.ohif_dir.glob("*.wasm"))
    assert signed_in.get(f"/ohif/{wasm}").headers["content-type"] == "application/wasm"


def test_client_routes_are_the_viewer_page_and_missing_files_are_404(signed_in):
    route = signed_in.get("/ohif/viewer?StudyInstanceUIDs=1.2.3")
    assert route.status_code == 200 and "window.PUBLIC_URL" in route.text
    assert signed_in.get("/ohif/no-such-chunk.js").status_code == 404
    assert signed_in.get("/ohif/.installed").status_code == 404
    assert signed_in.get("/ohif/%2e%2e/%2e%2e/pyproject.toml").status_code == 404


def test_signed_out_the_viewer_sends_to_sign_in(client):
    for path in ("/ohif", "/ohif/viewer", "/ohif/app-config.js"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


def test_without_the_viewer_installed_the_page_says_how_to_install_it(
    app, world, tmp_path, monkeypatch
):
    monkeypatch.setattr(world.runtime.settings, "ohif_dir", tmp_path / "absent")
    browser = world.client(app)
    world.sign_in(browser, world.user("metz-tech", (world.metz, "technologist")))
    for path in ("/ohif", "/ohif/viewer"):
        response = browser.get(path)
        assert response.status_code == 503
        assert "make ohif" in response.text
