"""The one error format on the API, liveness/readiness probes, and the OpenAPI schema/docs."""

import json
import re

import pytest
from django.test import Client

from tests.accounts.helpers import assert_error

pytestmark = pytest.mark.django_db


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/nope/deeper/", "/api/v1/notifications/abc"])
def test_unknown_api_path_is_404_in_error_format(api, path):
    assert_error(api.get(path), 404, "not_found")


def test_unknown_api_path_is_404_for_post_too(api):
    assert_error(api.post("/api/v1/nope", {}, format="json"), 404, "not_found")


def test_wrong_method_is_405_in_error_format(api, auth_api):
    assert_error(api.get("/api/v1/auth/token"), 405, "method_not_allowed")
    assert_error(api.put("/api/v1/auth/register", {}, format="json"), 405, "method_not_allowed")
    assert_error(auth_api.delete("/api/v1/me"), 405, "method_not_allowed")
    assert_error(auth_api.post("/api/v1/me", {}, format="json"), 405, "method_not_allowed")


def test_unauthenticated_me_is_401_not_authenticated(api):
    response = api.get("/api/v1/me")

    assert_error(response, 401, "not_authenticated")


def test_unsupported_media_type_is_415_in_error_format(api):
    response = api.post("/api/v1/auth/register", data="<xml/>", content_type="application/xml")

    assert_error(response, 415, "unsupported_media_type")


def test_non_api_404_is_html(db):
    response = Client().get("/definitely-not-a-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- probes ---------------------------------------------------------------------------------------


def test_healthz(db):
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_redis(db, settings):
    response = Client().get("/readyz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    if settings.DATABASE_URL:
        assert body["checks"]["database"]["vendor"] == "postgresql"
    assert all(isinstance(check["ms"], (int, float)) for check in body["checks"].values())


def test_readyz_reports_a_failing_check_as_503(db, monkeypatch):
    from trading import health

    def broken():
        raise ConnectionError("redis is down")

    monkeypatch.setitem(health._checks, "redis", broken)
    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "redis is down" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


# --- schema and docs ---------------------------------------------------------------------------------


def test_openapi_schema_lists_the_auth_endpoints(db):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/v1/auth/token",
        "/api/v1/auth/token/refresh",
        "/api/v1/auth/register",
        "/api/v1/me",
        "/api/v1/kyc",
    ):
        assert path in paths, sorted(paths)
    assert "post" in paths["/api/v1/auth/token"]


def test_openapi_schema_yaml_by_default(db):
    response = Client().get("/api/schema/")

    assert response.status_code == 200
    text = response.content.decode()
    assert text.startswith("openapi: 3.")
    assert "/api/v1/auth/token:" in text


def test_swagger_ui_is_self_hosted(db):
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    external = re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//[^"']+""", html, flags=re.IGNORECASE)
    assert not external, external
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com"):
        assert cdn not in html
    scripts = re.findall(r"""<script[^>]*\bsrc\s*=\s*["']([^"']+)""", html, flags=re.IGNORECASE)
    assert scripts and all(src.startswith("/") for src in scripts), scripts


def test_every_page_has_an_icon(client):
    """Browsers ask every page's origin for /favicon.ico; a 404 there is a console error on
    every page."""
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
