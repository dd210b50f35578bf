"""What a run records about where it ran: git commit, Python, host, command line."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from etp_client import __version__

GIT_TIMEOUT_S = 3.0


def _git(*args: str, cwd: Path | None = None) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, *args],
            cwd=cwd or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_sha(cwd: Path | None = None) -> str | None:
    """The commit checked out in the working directory (``None`` outside a repository)."""
    return _git("rev-parse", "HEAD", cwd=cwd)


def capture_environment(cwd: Path | None = None) -> dict[str, Any]:
    """A run's ``env``: deliberately no environment variables (they hold secrets)."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "argv": list(sys.argv),
        "cwd": str(cwd or Path.cwd()),
        "pid": os.getpid(),
        "etp_client": __version__,
    }
    sha = git_sha(cwd)
    if sha is not None:
        env["git_sha"] = sha
        env["git_branch"] = _git("rev-parse", "--abbrev-ref", "HEAD", cwd=cwd)
        status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
        env["git_dirty"] = bool(status)
        remote = _git("config", "--get", "remote.origin.url", cwd=cwd)
        if remote and "@" not in remote:  # never record credentials embedded in a URL
            env["git_remote"] = remote
    return env
