"""The caller (``/auth/me``, API tokens), projects and their members."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from etp_client.resources.base import ApiBase, qid
from etp_client.types import ApiToken, Member, Project


class AccountApi(ApiBase):
    def me(self) -> dict[str, Any]:
        """``{"user": {...}, "auth": "token"|"session"}``."""
        result: dict[str, Any] = self._get("/auth/me")
        return result

    def list_tokens(self) -> list[ApiToken]:
        return self._list("/auth/tokens")

    def create_token(self, name: str, *, expires_at: datetime | None = None) -> ApiToken:
        """A personal API token; ``token`` is in this answer only."""
        result: ApiToken = self._post("/auth/tokens", {"name": name, "expires_at": expires_at})
        return result

    def revoke_token(self, token_id: str) -> None:
        self._delete(f"/auth/tokens/{qid(token_id)}")


class ProjectsApi(ApiBase):
    def list_projects(self, *, q: str | None = None, limit: int | None = None) -> list[Project]:
        """The caller's projects, newest first."""
        return self._list("/projects", {"q": q}, limit)

    def create_project(self, name: str, *, description: str = "") -> Project:
        result: Project = self._post("/projects", {"name": name, "description": description})
        return result

    def get_project(self, project_id: Any) -> Project:
        result: Project = self._get(f"/projects/{qid(project_id)}")
        return result

    def update_project(
        self, project_id: Any, *, name: str | None = None, description: str | None = None
    ) -> Project:
        changes = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        result: Project = self._patch(f"/projects/{qid(project_id)}", changes)
        return result

    def delete_project(self, project_id: Any) -> None:
        self._delete(f"/projects/{qid(project_id)}")

    def find_project(self, name: str) -> Project | None:
        """The caller's project with exactly this name (the newest if several)."""
        return next((p for p in self.list_projects(q=name) if p["name"] == name), None)

    def list_members(self, project_id: Any) -> list[Member]:
        return self._list(f"/projects/{qid(project_id)}/members")

    def add_member(self, project_id: Any, *, email: str, role: str) -> Member:
        """Adds an existing user by email as ``owner``, ``editor`` or ``viewer``."""
        result: Member = self._post(
            f"/projects/{qid(project_id)}/members", {"email": email, "role": role}
        )
        return result

    def change_member(self, project_id: Any, user_id: Any, *, role: str) -> Member:
        result: Member = self._patch(
            f"/projects/{qid(project_id)}/members/{qid(user_id)}", {"role": role}
        )
        return result

    def remove_member(self, project_id: Any, user_id: Any) -> None:
        self._delete(f"/projects/{qid(project_id)}/members/{qid(user_id)}")
