"""Cross-origin requests: answered on the DICOMweb paths for configured origins only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from concilium.app import create_app
from concilium.config import Settings
from concilium.services import migrate_database


def test_cors_is_answered_for_configured_origins_on_dicomweb_only(tmp_path):
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'cors.db'}",
        dicomweb_cors_origins=["https://viewer.example.org"],
    )
    preflight = {
        "Origin": "https://viewer.example.org",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    migrate_database(settings.effective_database_url)
    with TestClient(create_app(settings)) as client:
        allowed = client.options("/dicomweb/studies", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://viewer.example.org"
        other = client.options(
            "/dicomweb/studies", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
        api = client.options("/api/v1/me", headers=preflight)
        assert "access-control-allow-origin" not in api.headers


def test_no_cors_by_default(tmp_path):
    settings = Settings(data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    migrate_database(settings.effective_database_url)
    with TestClient(create_app(settings)) as client:
        response = client.options(
            "/dicomweb/studies",
            headers={
                "Origin": "https://viewer.example.org",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert "access-control-allow-origin" not in response.headers
