"""``arq workers.main.WorkerSettings``: the worker process, configured from ``ETP_*`` once.

Everything else lives in ``workers.setup``; tests build workers from their own settings there.
"""

from __future__ import annotations

from core.jobs import worker_config
from core.settings import load_settings
from workers.setup import ping, worker_options

__all__ = ["WorkerSettings", "ping"]

settings = load_settings()

WorkerSettings = type(
    "WorkerSettings", (), worker_options(settings, worker_config(settings), standalone=True)
)
