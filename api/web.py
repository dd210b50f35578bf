"""The browser app: the built files of ``web/dist`` at ``/``, with client-side routing fallback.

- ``/assets/*``: Vite's content-hashed files, cached for a year (a new build has new names);
- any other GET outside the api's own paths (``/api``, probes, metrics, OpenAPI, docs): a file
  of the build when one has that name (``/favicon.svg``), else ``index.html`` for the app's
  router, revalidated on every load (``no-cache``) so a new build shows at once;
- no build yet: a 404 in the api's JSON error shape that says how to build it.

``ETP_WEB_DIST`` points at another build directory (tests, containers); it is read once, when
the app is created.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from quart import Blueprint, Response, current_app, send_from_directory
from quart_schema import hide
from werkzeug.routing import BaseConverter

from api.errors import error_response
from api.policy import public

DIST_ENV = "ETP_WEB_DIST"
DEFAULT_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
CONFIG_KEY = "ETP_WEB_DIST"

ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
SHELL_CACHE_CONTROL = "no-cache"
# First path segments the api owns: never answered with the app, so unknown api routes keep
# their JSON 404/405.
API_OWNED = ("api", "healthz", "readyz", "metrics", "openapi.json", "docs")

# The app loads only its own files and talks only to its own origin (fetch, SSE, WebSocket).
# Inline style attributes are set by React and uPlot through the DOM, which CSP allows;
# 'unsafe-inline' styles cover the few style elements libraries may add.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class AppPathConverter(BaseConverter):
    """A path of any depth whose first segment is not one the api owns."""

    owned = "|".join(re.escape(segment) for segment in API_OWNED)
    regex = rf"(?!(?:{owned})(?:/|$))[^/].*?"
    part_isolating = False
    weight = 200


class RootBlueprint(Blueprint):
    """Mounts at ``/`` even though the app registers resource blueprints under ``/api/v1``."""

    def register(self, app: Any, options: dict[str, Any]) -> None:
        super().register(app, {**options, "url_prefix": None})


bp = RootBlueprint("web", __name__)


@bp.record_once
def _configure(state: Any) -> None:
    # Runs before the routes below are added: their rule needs the converter.
    state.app.url_map.converters.setdefault("app_path", AppPathConverter)
    state.app.config[CONFIG_KEY] = Path(os.environ.get(DIST_ENV) or DEFAULT_DIST)


def _dist() -> Path | None:
    dist: Path = current_app.config[CONFIG_KEY]
    return dist if (dist / "index.html").is_file() else None


def _not_built() -> Response:
    response = error_response(
        404,
        "not_found",
        "the web app is not built; run `make setup` (it runs `npm ci && npm run build` in web/)",
        {"web_dist": str(current_app.config[CONFIG_KEY])},
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def _send(dist: Path, relative: str, cache_control: str) -> Response:
    """One file of the build (404 in the JSON shape when missing or outside ``dist``)."""
    response = await send_from_directory(dist, relative)
    response.headers["Cache-Control"] = cache_control
    return response


async def _app_shell(dist: Path) -> Response:
    response = await _send(dist, "index.html", SHELL_CACHE_CONTROL)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.get("/")
@hide
@public
async def app_index() -> Response:
    """The app's entry page."""
    dist = _dist()
    return _not_built() if dist is None else await _app_shell(dist)


@bp.get("/<app_path:path>")
@hide
@public
async def app_files(path: str) -> Response:
    """Hashed assets, other files of the build, else the entry page (client-side routes)."""
    dist = _dist()
    if dist is None:
        return _not_built()
    if path.startswith("assets/"):
        return await _send(dist, path, ASSET_CACHE_CONTROL)
    candidate = (dist / path).resolve()
    if candidate.is_file() and candidate.is_relative_to(dist.resolve()):
        return await _send(dist, path, SHELL_CACHE_CONTROL)
    return await _app_shell(dist)
