"""ETP client: the API from Python, run tracking, buffered sensor streams, the ``etp`` CLI.

from etp_client import Client, SensorStream

client = Client()  # ETP_URL / ETP_TOKEN, or what `etp login` saved
with client.start_run(experiment="baseline", project=pid, params={"lr": 0.1}) as run:
    run.log_metric("loss", 0.25, step=1)
"""

from __future__ import annotations

__version__ = "0.1.0"

from etp_client.client import Client
from etp_client.errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    EtpError,
    Forbidden,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RouteNotFound,
    ServerError,
    Unauthenticated,
    Unavailable,
)
from etp_client.stream import BufferFull, SensorStream, StreamStats
from etp_client.tracking import ActiveRun
from etp_client.transport import RetryPolicy

__all__ = [
    "ActiveRun",
    "BadRequest",
    "BufferFull",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "EtpError",
    "Forbidden",
    "InvalidInput",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RetryPolicy",
    "RouteNotFound",
    "SensorStream",
    "ServerError",
    "StreamStats",
    "Unauthenticated",
    "Unavailable",
    "__version__",
]
