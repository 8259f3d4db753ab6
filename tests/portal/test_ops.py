"""Health, readiness, metrics, the OpenAPI document, security headers, and logs without PHI."""

from __future__ import annotations

import logging

from concilium.app import iter_routes
from concilium.web.observability import JsonFormatter


def test_health_and_readiness(client, settings):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "data_dir": "ok"}


def test_readiness_fails_when_data_dir_is_unwritable(client, settings):
    # Replace the data dir by a file (permissions would not stop root).
    moved = settings.data_dir.with_name("var-moved")
    settings.data_dir.rename(moved)
    settings.data_dir.write_text("not a directory")
    try:
        response = client.get("/readyz")
    finally:
        settings.data_dir.unlink()
        moved.rename(settings.data_dir)
    assert response.status_code == 503
    assert response.json()["checks"]["data_dir"].startswith("failed")


def test_metrics_need_a_metrics_token(client, world):
    engineer = world.user("eng", (world.metz, "engineer"))
    assert client.get("/metrics").status_code == 401
    wrong = world.token(engineer, "admin")
    assert client.get("/metrics", headers={"authorization": f"Bearer {wrong}"}).status_code == 403
    token = world.token(engineer, "metrics")
    client.get("/healthz")
    body = client.get("/metrics", headers={"authorization": f"Bearer {token}"}).text
    assert 'concilium_http_requests_total{method="GET",route="/healthz",status="200"}' in body


def test_openapi_documents_every_json_route(client, app, world):
    user = world.user("coord", (world.metz, "coordinator"))
    doc = client.get(
        "/api/openapi.json",
        headers={"authorization": f"Bearer {world.token(user, 'patients:read')}"},
    )
    assert doc.status_code == 200
    paths = doc.json()["paths"]
    for route in iter_routes(app):
        if route.path.startswith("/api/v1/"):
            for method in route.methods:
                assert method.lower() in paths[route.path], (method, route.path)


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_logs_carry_no_phi_passwords_or_tokens(client, world, caplog):
    caplog.set_level(logging.DEBUG)
    coord = world.user("coord", (world.metz, "coordinator"))
    secret = world.token(coord, "patients:read", "patients:write")
    h = {"authorization": f"Bearer {secret}"}
    client.post(
        "/api/v1/patients",
        headers=h,
        json={
            "site_id": world.metz.id,
            "identifier": "IPP-SECRET-99",
            "family_name": "ZYGOMATIQUE",
            "given_name": "Berenice",
            "birth_date": "1950-01-02",
        },
    )
    client.get("/api/v1/patients?q=ZYGOMATIQUE", headers=h)
    world.start_login(client, "coord", "Wrong-Password-123")
    world.sign_in(client, coord)
    formatter = JsonFormatter()
    # httpx is the test's own client logging its requests, not the server.
    text = "\n".join(formatter.format(r) for r in caplog.records if r.name != "httpx")
    assert "request" in text  # the access log did run
    for secret_value in (
        "ZYGOMATIQUE",
        "Berenice",
        "IPP-SECRET-99",
        "1950-01-02",
        "Wrong-Password-123",
        "correct-horse-42",
        secret,
    ):
        assert secret_value not in text


def test_json_log_lines_are_json():
    import json

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.request_id = "abc"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "hello you" and entry["request_id"] == "abc" and entry["level"] == "info"
