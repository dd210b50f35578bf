"""Where the client finds its server URL and API token.

Order: explicit arguments, then ``ETP_URL`` / ``ETP_TOKEN``, then the config file written by
``etp login`` (``$ETP_CONFIG``, else ``$XDG_CONFIG_HOME/etp/config.json``, else
``~/.config/etp/config.json``; mode 0600 since it holds a secret).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    explicit = os.environ.get("ETP_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "etp" / "config.json"


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The saved settings; an empty dict when there is no (readable) file."""
    path = path or config_path()
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def write_config(values: dict[str, Any], path: Path | None = None) -> Path:
    """Saves ``values`` merged into the file, created with mode 0600 (never world-readable)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    merged = {**read_config(path), **values}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, orjson.dumps(merged, option=orjson.OPT_INDENT_2))
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def remove_config_keys(*keys: str, path: Path | None = None) -> None:
    path = path or config_path()
    data = read_config(path)
    if not data:
        return
    for key in keys:
        data.pop(key, None)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if data:
        write_config(data, path)


@dataclass(frozen=True, slots=True)
class Credentials:
    url: str
    token: str | None

    def __repr__(self) -> str:  # the token never prints
        return f"Credentials(url={self.url!r}, token={'***' if self.token else None})"


def resolve_credentials(url: str | None = None, token: str | None = None) -> Credentials:
    saved = read_config() if not (url and token) else {}
    resolved_url = url or os.environ.get("ETP_URL") or saved.get("url") or DEFAULT_URL
    resolved_token = token or os.environ.get("ETP_TOKEN") or saved.get("token") or None
    return Credentials(url=str(resolved_url).rstrip("/"), token=resolved_token)
