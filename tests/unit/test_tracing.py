"""W3C trace context: parsing, propagation through carriers and jobs, optional OpenTelemetry."""

import contextvars
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import tracing
from core.tracing import TraceContext, parse_traceparent

ROOT = Path(__file__).resolve().parents[2]
# The example of the W3C Trace Context recommendation.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
HEADER = f"00-{TRACE_ID}-{SPAN_ID}-01"


@pytest.fixture(autouse=True)
def noop_tracer() -> Iterator[None]:
    tracing.configure_tracing("test", env={})
    yield
    tracing.configure_tracing("test", env={})


def _parsed(value: str, state: str | None = None) -> TraceContext:
    context = parse_traceparent(value, state)
    assert context is not None
    return context


def test_parses_the_recommendation_example_and_formats_it_back():
    context = _parsed(HEADER)
    assert context == TraceContext(TRACE_ID, SPAN_ID, 1, "")
    assert context.sampled
    assert context.traceparent == HEADER
    assert parse_traceparent(f" {HEADER}\t") == context  # optional whitespace around the value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        HEADER.upper(),  # hex must be lowercase
        f"ff-{TRACE_ID}-{SPAN_ID}-01",  # version ff is forbidden
        f"00-{'0' * 32}-{SPAN_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01",
        f"00-{TRACE_ID}-{SPAN_ID}-1",
        f"00-{TRACE_ID}-{SPAN_ID}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID}-{SPAN_ID}-01x",
        f"00_{TRACE_ID}_{SPAN_ID}_01",
    ],
)
def test_invalid_traceparent_values_are_ignored(value):
    assert parse_traceparent(value) is None


def test_a_later_version_may_append_fields_and_only_the_sampled_flag_is_kept():
    context = parse_traceparent(f"cc-{TRACE_ID}-{SPAN_ID}-09-what-the-future-brings")
    assert context == TraceContext(TRACE_ID, SPAN_ID, 1, "")
    assert _parsed(f"00-{TRACE_ID}-{SPAN_ID}-00").sampled is False


def test_tracestate_is_passed_on_unless_oversized():
    assert _parsed(HEADER, "congo=t61rcWkgMzE").state == "congo=t61rcWkgMzE"
    assert _parsed(HEADER, "a=" + "x" * 600).state == ""
    headers = _parsed(HEADER, "congo=t61rcWkgMzE").headers()
    assert headers == {"traceparent": HEADER, "tracestate": "congo=t61rcWkgMzE"}


def test_new_traces_have_random_nonzero_ids():
    first, second = tracing.new_trace(), tracing.new_trace()
    assert first.trace_id != second.trace_id
    assert parse_traceparent(first.traceparent) == first
    assert tracing.new_trace(sampled=False).traceparent.endswith("-00")


def test_a_request_span_continues_the_incoming_trace_and_becomes_current():
    assert tracing.current_trace() is None
    assert tracing.carrier() == {}
    with tracing.tracer().span("POST /api/v1/telemetry", parent={"traceparent": HEADER}) as span:
        assert span.context.trace_id == TRACE_ID
        assert span.context.span_id != SPAN_ID
        assert tracing.current_trace() == span.context
        assert tracing.carrier() == {"traceparent": span.context.traceparent}
        with tracing.tracer().span("inner") as inner:
            assert inner.context.trace_id == TRACE_ID
            assert inner.context.span_id != span.context.span_id
        assert tracing.current_trace() == span.context
    assert tracing.current_trace() is None


def test_without_a_valid_parent_a_new_trace_starts_and_unsampled_stays_unsampled():
    with tracing.tracer().span("request", parent={"traceparent": "nonsense"}) as span:
        assert span.context.trace_id != TRACE_ID
    unsampled = f"00-{TRACE_ID}-{SPAN_ID}-00"
    with tracing.tracer().span("request", parent=unsampled) as span:
        assert span.context.trace_id == TRACE_ID
        assert not span.context.sampled
        assert tracing.carrier()["traceparent"].endswith("-00")


def test_the_carrier_continues_the_trace_in_another_process_context():
    """An actor call runs in another process: only the carrier crosses, not the contextvar."""
    received: list[TraceContext] = []

    def actor_method(trace: dict[str, str]) -> None:
        assert tracing.current_trace() is None  # nothing leaks through a fresh context
        with tracing.tracer().span("actor.ingest", parent=trace, kind="server") as span:
            received.append(span.context)

    with tracing.tracer().span("POST /api/v1/telemetry", parent=HEADER) as request_span:
        sent = tracing.carrier()
        contextvars.Context().run(actor_method, sent)
    assert received[0].trace_id == TRACE_ID
    assert received[0].span_id not in (SPAN_ID, request_span.context.span_id)


def test_job_keywords_carry_the_trace_and_are_removed_before_the_job_runs():
    with tracing.tracer().span("enqueue", parent=HEADER, kind="producer") as span:
        kwargs = {"message_id": 7, **tracing.job_kwargs()}
    assert kwargs["traceparent"] == span.context.traceparent
    parent = tracing.pop_job_context(kwargs)
    assert kwargs == {"message_id": 7}
    assert parent == span.context
    untouched = {"message_id": 7}
    assert tracing.pop_job_context(untouched) is None
    assert untouched == {"message_id": 7}


def test_a_span_ended_in_another_context_does_not_raise():
    span = tracing.tracer().start_span("request", parent=HEADER, kind="server")
    contextvars.copy_context().run(span.end)
    span.end()  # a second end is ignored


def test_unknown_span_kinds_are_refused():
    with pytest.raises(ValueError, match="span kind"):
        tracing.tracer().start_span("x", kind="sideways")


def test_without_an_exporter_tracing_is_a_no_op_that_imports_no_opentelemetry():
    code = (
        "import sys\n"
        "from core import tracing\n"
        "t = tracing.configure_tracing('etp-api', env={})\n"
        "with t.span('x', parent='00-" + TRACE_ID + "-" + SPAN_ID + "-01') as s:\n"
        "    assert s.context.trace_id == '" + TRACE_ID + "'\n"
        "print(t.enabled, any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split() == ["False", "False"]


def test_disabled_sdk_or_missing_exporter_package_leaves_tracing_off(monkeypatch, caplog):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}
    assert tracing.configure_tracing("etp-api", env=env).enabled is False
    monkeypatch.setitem(tracing._EXPORTER_MODULES, "http/protobuf", "etp_no_such_exporter")
    with caplog.at_level(logging.WARNING, logger="etp.tracing"):
        tracer = tracing.configure_tracing(
            "etp-api", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
        )
    assert tracer.enabled is False
    assert "not installed" in caplog.text
    with caplog.at_level(logging.WARNING, logger="etp.tracing"):
        tracer = tracing.configure_tracing(
            "etp-api",
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": "x",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon",
            },
        )
    assert tracer.enabled is False
    assert "unsupported" in caplog.text


def test_with_an_exporter_spans_are_recorded_under_the_incoming_trace():
    pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    exporter = InMemorySpanExporter()
    tracer = tracing.configure_tracing("etp-api", env={}, exporter=exporter)
    assert tracer.enabled
    with tracer.span(
        "POST /api/v1/telemetry", parent=HEADER, kind="server", attributes={"points": 100}
    ) as request_span:
        carried = tracing.carrier()
        with pytest.raises(RuntimeError), tracer.span("actor.ingest", parent=carried):
            raise RuntimeError("flush failed")
    spans = {span.name: span for span in exporter.get_finished_spans()}
    request, actor = spans["POST /api/v1/telemetry"], spans["actor.ingest"]
    assert request.context is not None and request.parent is not None
    assert actor.parent is not None and request.attributes is not None
    assert request.context.trace_id == int(TRACE_ID, 16)
    assert request.parent.span_id == int(SPAN_ID, 16)
    assert request.kind == SpanKind.SERVER
    assert request.attributes["points"] == 100
    assert format(request.context.span_id, "016x") == request_span.context.span_id
    assert actor.parent.span_id == request.context.span_id
    assert actor.status.status_code == StatusCode.ERROR
    assert request.resource.attributes["service.name"] == "etp-api"
