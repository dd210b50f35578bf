"""The api serves the built web app at ``/``: hashed assets cached for good, the app's entry page
for client-side routes, never in place of the api's own paths; a clear 404 when not built.

No build is needed: each test points ``ETP_WEB_DIST`` at a small directory of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Secret, Settings

INDEX = "<!doctype html><html><body><div id=root></div><script src=/assets/x.js></script>"
ASSET = "console.log('etp');"


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        mode="test",
        secret_key=Secret("test-secret-key-" + "x" * 32),
        data_dir=str(tmp_path / "data"),
        base_url="http://testserver.local",
    )


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "dist"
    (directory / "assets").mkdir(parents=True)
    (directory / "index.html").write_text(INDEX)
    (directory / "assets" / "x.js").write_text(ASSET)
    (directory / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    monkeypatch.setenv("ETP_WEB_DIST", str(directory))
    return directory


async def _client(tmp_path: Path) -> AsyncIterator[Any]:
    from api.app import create_app

    app = create_app(_settings(tmp_path), connect_dependencies=False)
    async with app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture
async def client(dist: Path, tmp_path: Path) -> AsyncIterator[Any]:
    async for test_client in _client(tmp_path):
        yield test_client


async def _text(response: Any) -> str:
    return (await response.get_data()).decode()


async def test_entry_page_is_served_at_the_root_and_never_cached_stale(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert await _text(response) == INDEX
    assert response.headers["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Request-ID"]


async def test_client_side_routes_fall_back_to_the_entry_page(client):
    for path in ("/login", "/projects", "/projects/3f1c/audit", "/reset-password?token=abc"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert await _text(response) == INDEX, path
        assert response.headers["Cache-Control"] == "no-cache", path


async def test_hashed_assets_are_cached_for_a_year(client):
    response = await client.get("/assets/x.js")
    assert response.status_code == 200
    assert await _text(response) == ASSET
    assert "javascript" in response.mimetype
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


async def test_a_missing_asset_is_a_json_404_not_the_entry_page(client):
    response = await client.get("/assets/gone-1234.js")
    assert response.status_code == 404
    body = await response.get_json()
    assert body["error"]["code"] == "not_found"
    assert "immutable" not in response.headers.get("Cache-Control", "")


async def test_other_files_of_the_build_are_served_as_themselves(client):
    response = await client.get("/favicon.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Cache-Control"] == "no-cache"


async def test_nothing_outside_the_build_directory_is_served(client):
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"):
        response = await client.get(path)
        assert "outside the build" not in await _text(response), path


async def test_api_paths_keep_their_own_answers(client):
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"
    for path in ("/api", "/api/", "/docs/nothing", "/metrics/x"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "application/json", path
    response = await client.get("/healthz")
    assert (await response.get_json()) == {"status": "ok"}
    # A GET on a POST-only api route is still "wrong method", not the web app.
    response = await client.get("/api/v1/auth/login")
    assert response.status_code == 405
    # The app's routes are not part of the API document.
    document = await (await client.get("/openapi.json")).get_json()
    assert "/" not in document["paths"]
    assert not any("app_path" in path or path.startswith("/{") for path in document["paths"])


async def test_unsafe_methods_on_app_paths_are_refused(client):
    response = await client.post("/projects", headers={"Origin": "http://testserver.local"})
    assert response.status_code == 405
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"


async def test_without_a_build_the_app_paths_say_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ETP_WEB_DIST", str(tmp_path / "no-build"))
    async for client in _client(tmp_path):
        for path in ("/", "/projects", "/assets/x.js"):
            response = await client.get(path)
            assert response.status_code == 404, path
            body = await response.get_json()
            assert body["error"]["code"] == "not_found"
            assert "make setup" in body["error"]["message"]
            assert body["error"]["request_id"] == response.headers["X-Request-ID"]
        assert (await client.get("/healthz")).status_code == 200
