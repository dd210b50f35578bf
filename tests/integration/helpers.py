"""Helpers that act as real API users (no shortcuts into the database)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

PASSWORD = "correct horse battery staple"
_emails = itertools.count()


@dataclass
class ApiUser:
    """A registered user with a signed-in browser client and a personal API token."""

    app: Any
    id: str
    email: str
    token: str
    csrf: str
    browser: Any  # a test client holding the session cookie
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request with the user's API token."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return await self.app.test_client().open(path, method=method, headers=headers, **kwargs)

    async def json(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        body = await response.get_json()
        assert response.status_code == expect, (method, path, response.status_code, body)
        return body


async def register(app: Any, *, email: str | None = None, name: str = "Test User") -> ApiUser:
    email = email or f"user{next(_emails)}@example.com"
    browser = app.test_client()
    response = await browser.post(
        "/api/v1/auth/register", json={"email": email, "display_name": name, "password": PASSWORD}
    )
    body = await response.get_json()
    assert response.status_code == 201, body
    csrf = body["csrf_token"]
    response = await browser.post(
        "/api/v1/auth/tokens", json={"name": "tests"}, headers={"X-CSRF-Token": csrf}
    )
    token_body = await response.get_json()
    assert response.status_code == 201, token_body
    return ApiUser(
        app=app,
        id=body["user"]["id"],
        email=email,
        token=token_body["token"],
        csrf=csrf,
        browser=browser,
    )


async def create_project(owner: ApiUser, name: str = "Project") -> dict[str, Any]:
    return await owner.json("POST", "/api/v1/projects", 201, json={"name": name})


async def add_member(owner: ApiUser, project_id: str, member: ApiUser, role: str) -> None:
    await owner.json(
        "POST",
        f"/api/v1/projects/{project_id}/members",
        201,
        json={"email": member.email, "role": role},
    )


async def create_sensor(owner: ApiUser, project_id: str, **fields: Any) -> dict[str, Any]:
    """A sensor through the API; the response carries its token (shown once)."""
    body = {"name": fields.pop("name", "sensor"), **fields}
    return await owner.json("POST", f"/api/v1/projects/{project_id}/sensors", 201, json=body)


async def send_points(app: Any, token: str, points: list[dict[str, Any]], **kwargs: Any) -> Any:
    """POST /telemetry with a sensor token; returns the response."""
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    if "data" in kwargs:
        return await app.test_client().post("/api/v1/telemetry", headers=headers, **kwargs)
    return await app.test_client().post(
        "/api/v1/telemetry", json={"points": points}, headers=headers, **kwargs
    )
