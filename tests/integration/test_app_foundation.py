"""The app's lifespan, probes, error shape, request ids, OpenAPI and metrics."""


async def test_healthz_answers_with_a_request_id(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert (await response.get_json()) == {"status": "ok"}
    assert len(response.headers["X-Request-ID"]) >= 16


async def test_an_incoming_request_id_is_kept_and_a_hostile_one_replaced(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert response.headers["X-Request-ID"] != "bad id <script>"


async def test_readyz_reports_postgres_with_timescaledb_redis_and_ray(client):
    response = await client.get("/api/v1/readyz")
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["postgres"]["ok"] and body["checks"]["postgres"]["timescaledb"]
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["ray"]["ok"] and body["checks"]["ray"]["nodes_alive"] >= 1


async def test_unknown_route_and_wrong_method_use_the_one_error_shape(client):
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    body = await response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "not_found"
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"


async def test_openapi_document_is_generated_from_the_code(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = await response.get_json()
    assert document["openapi"].startswith("3.")
    assert "/readyz" in document["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_metrics_are_prometheus_text_and_count_requests(client):
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = (await response.get_data()).decode()
    assert "etp_http_requests_total" in text
    assert 'route="/healthz"' in text


async def test_a_route_without_a_policy_is_refused(settings, ray_instance):
    from api.app import create_app

    app = create_app(settings, connect_dependencies=False)

    @app.get("/undeclared")
    async def undeclared() -> str:
        return "should never be served"

    response = await app.test_client().get("/undeclared")
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "forbidden"


async def test_an_unexpected_error_is_a_json_500_without_a_trace(settings):
    from api.app import create_app
    from api.policy import public

    app = create_app(settings, connect_dependencies=False)

    @app.get("/boom")
    @public
    async def boom() -> str:
        raise RuntimeError("secret internals")

    response = await app.test_client().get("/boom")
    assert response.status_code == 500
    body = await response.get_json()
    assert body["error"]["code"] == "internal"
    assert "secret internals" not in str(body) and "Traceback" not in str(body)
