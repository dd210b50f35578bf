"""``create_app(settings)``: the Quart application with its lifespan, errors and routes."""

from __future__ import annotations

import logging
import re
import time
import uuid

import redis.asyncio as aioredis
from prometheus_client import Counter, Histogram
from quart import Quart, Response, g, request
from quart_schema import QuartSchema

from actors import connect_ray
from api import health
from api.artifacts import install_upload_streaming
from api.errors import error_response, register_error_handlers
from api.ingest import token_cache
from api.live import start_live, stop_live
from api.policy import endpoint_policy
from api.project_scope import authorize_project
from api.security import UNSAFE_METHODS, authenticate_request, check_origin, setup_auth
from api.state import Services
from api.subscriptions import ControlEvents
from core.db import create_pool
from core.log import request_id_var
from core.redis_keys import sensor_token_revoked_channel
from core.settings import Settings

log = logging.getLogger("etp.api")

API_PREFIX = "/api/v1"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

HTTP_REQUESTS = Counter("etp_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "etp_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Resource blueprints, each mounted under /api/v1; every resource module owns one ``bp``.
BLUEPRINTS: list[str] = [
    "api.auth",
    "api.projects",
    "api.audit",
    "api.experiments",
    "api.runs",
    "api.capture",
    "api.sensors",
    "api.profiles",
    "api.live",
    "api.history",
    "api.webhooks",
    "api.exports",
    "api.backfill",
    "api.metrics",
    "api.artifacts",
    "api.comparisons",
    "api.ingest",
    "api.web",
]


def _register_blueprints(app: Quart) -> None:
    import importlib

    # Probes answer at the root (what orchestrators expect) and under the api prefix.
    app.register_blueprint(health.bp)
    app.register_blueprint(health.bp, url_prefix=API_PREFIX, name="health_v1")
    for module_name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(module_name).bp, url_prefix=API_PREFIX)


def _cors_headers(response: Response, settings: Settings) -> None:
    origin = request.headers.get("Origin")
    if origin and origin in settings.cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, Retry-After"
        response.vary.add("Origin")


def _preflight(settings: Settings) -> Response:
    response = Response(status=204)
    origin = request.headers.get("Origin")
    if origin and origin in settings.cors_origins:
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
        response.headers["Access-Control-Allow-Headers"] = (
            "Authorization, Content-Type, Idempotency-Key, X-CSRF-Token, X-Request-ID, "
            "Last-Event-ID"
        )
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def create_app(settings: Settings, *, connect_dependencies: bool = True) -> Quart:
    """Builds the app; pools and the Ray connection open when serving starts."""
    app = Quart(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = max(settings.ingest_max_bytes * 2, 16 * 1024 * 1024)
    app.extensions["etp"] = state = Services(settings=settings)
    QuartSchema(
        app,
        info={"title": "ETP API", "version": "1"},
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in_": "cookie", "name": "etp_session"},
        },
    )
    setup_auth(app, settings)
    install_upload_streaming(app)
    register_error_handlers(app)
    _register_blueprints(app)

    @app.before_serving
    async def open_connections() -> None:
        if not connect_dependencies:
            return
        state.db = await create_pool(settings)
        state.redis = aioredis.from_url(settings.redis_url, health_check_interval=30)
        connect_ray(settings)
        events = ControlEvents(settings.redis_url)
        events.on(sensor_token_revoked_channel(), token_cache().handle_message)
        start_live(state, events)
        events.start()
        state.extras["control_events"] = events

    @app.after_serving
    async def close_connections() -> None:
        await stop_live(state)
        events = state.extras.pop("control_events", None)
        if events is not None:
            await events.stop()
        if state.redis is not None:
            await state.redis.aclose()
        if state.db is not None:
            await state.db.close()

    @app.before_request
    async def start_request() -> Response | None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()
        request_id_var.set(g.request_id)
        if request.method == "OPTIONS":
            return _preflight(settings)
        if request.endpoint is None:
            return None  # 404/405 are answered by the error handlers
        policy = endpoint_policy(app, request.endpoint)
        if policy is None:
            log.error("route without an access policy", extra={"endpoint": request.endpoint})
            return error_response(403, "forbidden", "this route declares no access policy")
        if policy.kind in ("user", "project"):
            g.principal = await authenticate_request(settings)
        if policy.kind == "project":
            assert policy.action is not None
            await authorize_project(g.principal, policy.action, request.view_args or {})
        elif request.method in UNSAFE_METHODS and policy.kind == "public":
            check_origin(settings)
        return None

    @app.after_request
    async def finish_request(response: Response) -> Response:
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers["X-Request-ID"] = request_id
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        started = getattr(g, "request_started", None)
        if started is not None:
            HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        _cors_headers(response, settings)
        return response

    return app
