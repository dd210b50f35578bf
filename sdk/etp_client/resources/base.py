"""What every resource mixin builds on: the transport and cursor pagination."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from etp_client.transport import Transport

MAX_PAGE = 1000  # the server's largest ?limit=


def qid(value: Any) -> str:
    """An id for a URL path (accepts UUIDs, dicts with an ``id`` and strings)."""
    if isinstance(value, Mapping):
        value = value["id"]
    return str(value)


class ApiBase:
    _http: Transport

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._http.call("GET", path, params=params)

    def _post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self._http.call("POST", path, json=body, **kwargs)

    def _put(self, path: str, body: Any) -> Any:
        return self._http.call("PUT", path, json=body)

    def _patch(self, path: str, body: Any) -> Any:
        return self._http.call("PATCH", path, json=body)

    def _delete(self, path: str) -> None:
        self._http.call("DELETE", path)

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> Iterator[Any]:
        """Every item of a ``{items, next_cursor}`` listing, following cursors (at most
        ``limit`` items when given)."""
        query = dict(params or {})
        remaining = limit
        cursor: str | None = None
        while True:
            size = MAX_PAGE if remaining is None else max(1, min(MAX_PAGE, remaining))
            page = self._get(path, {**query, "limit": size, "cursor": cursor})
            for item in page["items"]:
                yield item
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def _list(
        self, path: str, params: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> list[Any]:
        return list(self.iter_pages(path, params, limit=limit))
