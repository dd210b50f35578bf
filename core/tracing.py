"""W3C Trace Context (``traceparent``) across the api, actors and jobs; OpenTelemetry optional.

Every process keeps the current trace in a contextvar. The api starts a span per request from
the incoming ``traceparent`` header (or a fresh trace), passes ``carrier()`` along with every
actor call and ``job_kwargs()`` with every arq job, and the receiving side opens its span with
that carrier as the parent, so one trace id follows a point from the HTTP request through the
sensor actor's commit, and an event through its webhook job.

Exporting spans is OpenTelemetry's job and happens only when an exporter is configured
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, and the optional
``opentelemetry-sdk`` plus ``opentelemetry-exporter-otlp-proto-http`` or ``-grpc`` packages).
Otherwise the tracer is a no-op built on the standard library alone: ids are still generated
and propagated (logs and downstream services can use them), nothing is recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("etp.tracing")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# Keyword arguments of an arq job that carry the trace (popped before the job runs).
JOB_KWARGS = (TRACEPARENT, TRACESTATE)
SAMPLED = 0x01
TRACESTATE_MAX_CHARS = 512  # W3C: at least 512 characters must be passed on; longer is dropped

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
SPAN_KINDS = ("internal", "server", "client", "producer", "consumer")

# Where OpenTelemetry's OTLP span exporters live, by OTEL_EXPORTER_OTLP_PROTOCOL.
_EXPORTER_MODULES = {
    "http/protobuf": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
}


@dataclass(frozen=True, slots=True)
class TraceContext:
    """One position in a trace: the trace id and the id of the span that is the parent of
    whatever receives this context."""

    trace_id: str  # 32 lowercase hex digits, not all zero
    span_id: str  # 16 lowercase hex digits, not all zero
    flags: int = SAMPLED
    state: str = ""  # the vendors' ``tracestate``, passed on unchanged

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"

    def headers(self) -> dict[str, str]:
        """``traceparent`` (and ``tracestate`` when there is one), ready to send."""
        carried = {TRACEPARENT: self.traceparent}
        if self.state:
            carried[TRACESTATE] = self.state
        return carried

    def child(self) -> TraceContext:
        """The same trace with a new span id (a span started under this one)."""
        return TraceContext(self.trace_id, _new_span_id(), self.flags, self.state)


def _new_span_id() -> str:
    while (span_id := secrets.token_hex(8)) == _ZERO_SPAN:
        pass  # pragma: no cover (one chance in 2**64)
    return span_id


def new_trace(*, sampled: bool = True) -> TraceContext:
    """A fresh trace with a random trace id and root span id."""
    while (trace_id := secrets.token_hex(16)) == _ZERO_TRACE:
        pass  # pragma: no cover (one chance in 2**128)
    return TraceContext(trace_id, _new_span_id(), SAMPLED if sampled else 0)


def parse_traceparent(value: str | None, state: str | None = None) -> TraceContext | None:
    """The context in a ``traceparent`` value, or None when it is absent or invalid.

    Follows W3C Trace Context: version ``ff`` and all-zero ids are invalid; version 00 has
    exactly four fields; a later version may append fields, which are ignored. Only the
    ``sampled`` flag is kept.
    """
    if not value:
        return None
    value = value.strip(" \t")
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, span_id, flags, extra = match.groups()
    if version == "ff" or (version == "00" and extra is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    state = (state or "").strip(" \t")
    if len(state) > TRACESTATE_MAX_CHARS:
        state = ""
    return TraceContext(trace_id, span_id, int(flags, 16) & SAMPLED, state)


def from_carrier(carrier: Mapping[str, Any] | None) -> TraceContext | None:
    """The context in HTTP headers, an actor call's carrier or a job's keyword arguments."""
    if not carrier:
        return None
    value = carrier.get(TRACEPARENT)
    state = carrier.get(TRACESTATE)
    return parse_traceparent(
        value if isinstance(value, str) else None, state if isinstance(state, str) else None
    )


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "etp_trace", default=None
)


def current_trace() -> TraceContext | None:
    """The context of the span running in this task, if any."""
    return _current.get()


def carrier() -> dict[str, str]:
    """Headers to hand to an actor call or an outgoing request; empty outside any trace."""
    context = _current.get()
    return context.headers() if context is not None else {}


def job_kwargs() -> dict[str, str]:
    """Keyword arguments to add to ``enqueue_job`` so the job continues the current trace."""
    return carrier()


def pop_job_context(kwargs: dict[str, Any]) -> TraceContext | None:
    """Removes the trace keywords from a job's keyword arguments; returns their context."""
    carried = {name: kwargs.pop(name) for name in JOB_KWARGS if name in kwargs}
    return from_carrier(carried)


Parent = TraceContext | Mapping[str, Any] | str | None


def _resolve_parent(parent: Parent) -> TraceContext | None:
    if isinstance(parent, TraceContext):
        return parent
    if isinstance(parent, str):
        return parse_traceparent(parent)
    if parent is None:
        return _current.get()
    return from_carrier(parent)


class Span:
    """A started span: its context is current until ``end()``."""

    def __init__(self, context: TraceContext, otel_span: Any = None):
        self.context = context
        self._otel = otel_span
        self._previous = _current.get()
        self._token = _current.set(context)
        self._ended = False

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        if self._otel is not None:
            self._otel.set_attribute(key, value)

    def record_error(self, error: BaseException) -> None:
        if self._otel is not None:
            from opentelemetry.trace import Status, StatusCode

            self._otel.record_exception(error)
            self._otel.set_status(Status(StatusCode.ERROR, type(error).__name__))

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._otel is not None:
            self._otel.end()
        try:
            _current.reset(self._token)
        except ValueError:  # ended in another context (e.g. a framework's after-request hook)
            _current.set(self._previous)


class Tracer:
    """The no-op tracer: contexts are created and propagated, nothing is recorded."""

    enabled = False

    def start_span(
        self,
        name: str,
        *,
        parent: Parent = None,
        kind: str = "internal",
        attributes: Mapping[str, str | int | float | bool] | None = None,
    ) -> Span:
        """Starts a span under ``parent``: a context, a carrier (headers, an actor call's or a
        job's trace keywords) or a traceparent string; None means the current span. An
        explicit parent that carries no valid context starts a new trace."""
        if kind not in SPAN_KINDS:
            raise ValueError(f"span kind must be one of {', '.join(SPAN_KINDS)}")
        resolved = _resolve_parent(parent)
        return self._start(name, resolved, kind, dict(attributes or {}))

    def _start(
        self, name: str, parent: TraceContext | None, kind: str, attributes: dict[str, Any]
    ) -> Span:
        return Span(parent.child() if parent is not None else new_trace())

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        *,
        parent: Parent = None,
        kind: str = "internal",
        attributes: Mapping[str, str | int | float | bool] | None = None,
    ) -> Iterator[Span]:
        """``start_span`` as a context manager; an exception is recorded on the span."""
        active = self.start_span(name, parent=parent, kind=kind, attributes=attributes)
        try:
            yield active
        except BaseException as exc:
            active.record_error(exc)
            raise
        finally:
            active.end()

    def shutdown(self) -> None:
        """Flushes and stops the exporter (nothing to do here)."""


class OpenTelemetryTracer(Tracer):
    """Spans recorded by an OpenTelemetry SDK tracer provider (this module's own provider; the
    process-wide global one is left alone, so Ray's or a library's tracing is unaffected)."""

    enabled = True

    def __init__(self, provider: Any):
        from opentelemetry import trace

        self._trace = trace
        self._provider = provider
        self._tracer = provider.get_tracer("etp")

    def _start(
        self, name: str, parent: TraceContext | None, kind: str, attributes: dict[str, Any]
    ) -> Span:
        trace = self._trace
        context = None
        if parent is not None:
            remote = trace.SpanContext(
                trace_id=int(parent.trace_id, 16),
                span_id=int(parent.span_id, 16),
                is_remote=True,
                trace_flags=trace.TraceFlags(parent.flags),
            )
            context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        otel_span = self._tracer.start_span(
            name,
            context=context,
            kind=getattr(trace.SpanKind, kind.upper()),
            attributes=attributes,
        )
        started = otel_span.get_span_context()
        own = TraceContext(
            format(started.trace_id, "032x"),
            format(started.span_id, "016x"),
            int(started.trace_flags) & SAMPLED,
            parent.state if parent is not None else "",
        )
        return Span(own, otel_span)

    def shutdown(self) -> None:
        self._provider.shutdown()


_tracer: Tracer = Tracer()
_configured = False


def tracer() -> Tracer:
    """This process's tracer (the no-op one until ``configure_tracing``)."""
    return _tracer


def _exporter_from_env(env: Mapping[str, str]) -> Any:
    """The OTLP span exporter the environment asks for, or None (no-op tracing)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint:
        return None
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    module_name = _EXPORTER_MODULES.get(protocol)
    if module_name is None:
        log.warning(
            "unsupported OTEL_EXPORTER_OTLP_PROTOCOL; tracing stays off",
            extra={"protocol": protocol, "supported": sorted(_EXPORTER_MODULES)},
        )
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = "opentelemetry-exporter-otlp-proto-" + ("grpc" if protocol == "grpc" else "http")
        log.warning(
            "an OTLP endpoint is set but the exporter is not installed; tracing stays off",
            extra={"install": f"pip install opentelemetry-sdk {package}"},
        )
        return None
    return module.OTLPSpanExporter()


def configure_tracing(
    service_name: str, env: Mapping[str, str] | None = None, *, exporter: Any = None
) -> Tracer:
    """Sets this process's tracer: OpenTelemetry when an exporter is configured in ``env``
    (``os.environ`` by default) or passed in (spans then go out one by one: tests,
    debugging), the no-op tracer otherwise."""
    global _tracer, _configured
    env = os.environ if env is None else env
    explicit = exporter is not None
    if exporter is None:
        exporter = _exporter_from_env(env)
    _tracer.shutdown()
    _tracer, _configured = Tracer(), True
    if exporter is None:
        return _tracer
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        log.warning(
            "an OTLP exporter is configured but opentelemetry-sdk is not installed; "
            "tracing stays off"
        )
        return _tracer
    name = env.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    processor = SimpleSpanProcessor(exporter) if explicit else BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    _tracer = OpenTelemetryTracer(provider)
    log.info("tracing exports spans", extra={"service": name})
    return _tracer


def ensure_tracing(service_name: str) -> Tracer:
    """``configure_tracing`` from the environment on the first call in this process (actor
    processes call it in their constructor); the configured tracer afterwards."""
    if not _configured:
        return configure_tracing(service_name)
    return _tracer
