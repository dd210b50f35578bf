"""``etp simulate``: stream simulated sensors into a project (optionally as a capture session)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from etp_client.cli.common import console, err_console, handle_errors, options, print_json
from etp_client.client import Client
from etp_client.errors import EtpError
from etp_client.simulator import (
    SCENARIOS,
    WAVEFORMS,
    SimSensor,
    SimulationConfig,
    SimulationResult,
    prepare_sensors,
    simulate,
)

COLUMNS = ("name", "sent", "accepted", "rejected", "failed", "retries", "latency_p50_ms")


def _table(result: SimulationResult) -> Table:
    table = Table(title=f"etp simulate — {result.elapsed_s:.1f} s", show_edge=False)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "name" else "right")
    for sensor in result.sensors:
        row = sensor.as_dict()
        table.add_row(*(str(row[c] if row[c] is not None else "") for c in COLUMNS))
    totals = result.totals()
    cells = (totals.get(c) for c in COLUMNS[1:])
    table.add_row("total", *("" if v is None else str(v) for v in cells), style="bold")
    return table


def _line(result: SimulationResult) -> str:
    t = result.totals()
    return (
        f"t={t['elapsed_s']:.1f}s sent={t['sent']} accepted={t['accepted']} "
        f"rejected={t['rejected']} failed={t['failed']} retries={t['retries']} "
        f"p50={t['latency_p50_ms']}ms p95={t['latency_p95_ms']}ms"
    )


def run_simulation(
    url: str, sensors: list[SimSensor], config: SimulationConfig, *, live: bool, quiet: bool
) -> SimulationResult:
    if live:
        with Live(console=err_console, refresh_per_second=4) as view:
            return asyncio.run(
                simulate(url, sensors, config, report=lambda r: view.update(_table(r)))
            )

    def report(result: SimulationResult) -> None:
        if not quiet:
            err_console.print(_line(result), highlight=False)

    return asyncio.run(simulate(url, sensors, config, report=report))


def _attach(client: Client, run_id: str, sensors: list[SimSensor]) -> None:
    current = [s["id"] for s in client.list_run_sensors(run_id)]
    wanted = list(dict.fromkeys([*current, *(s.id for s in sensors if s.id)]))
    if set(wanted) != set(current):
        client.set_run_sensors(run_id, wanted)


def _stopped_session(client: Client, session_id: str, timeout_s: float) -> dict[str, Any]:
    try:
        stopped = client.wait_capture_summary(session_id, timeout_s=timeout_s)
    except EtpError as exc:  # the data is in; only the summary is late
        err_console.print(f"[yellow]warning:[/yellow] {exc.message}", highlight=False)
        stopped = client.get_capture_session(session_id)
    return {"id": stopped["id"], "status": stopped["status"], "summary": stopped["summary"]}


@handle_errors
def simulate_command(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="project for sim-1..N sensors")
    ] = None,
    sensors: Annotated[int, typer.Option("--sensors", "-n", min=1, max=1000)] = 3,
    rate: Annotated[float, typer.Option("--rate", help="points per second per sensor")] = 10.0,
    duration: Annotated[float, typer.Option("--duration", help="seconds")] = 10.0,
    scenario: Annotated[str, typer.Option(help=", ".join(SCENARIOS))] = "normal",
    waveform: Annotated[str, typer.Option(help=", ".join(WAVEFORMS))] = "sine",
    sensor_token: Annotated[
        list[str] | None,
        typer.Option("--sensor-token", help="send as this sensor (repeatable); no --project"),
    ] = None,
    capture_run: Annotated[
        str | None,
        typer.Option(help="attach the sensors to this run and record a capture session"),
    ] = None,
    send_interval: Annotated[float, typer.Option(help="seconds between requests")] = 0.25,
    skew_s: Annotated[float, typer.Option(help="clock-skew scenario: clock offset (s)")] = 600.0,
    seed: Annotated[int | None, typer.Option(help="repeatable random data")] = None,
    summary_timeout: Annotated[
        float, typer.Option(help="seconds to wait for the capture summary")
    ] = 15.0,
    quiet: Annotated[bool, typer.Option(help="only the final result")] = False,
) -> None:
    """Stream simulated sensors (waveforms and fault scenarios) through the real ingest."""
    opts = options(ctx)
    config = SimulationConfig(
        rate_hz=rate,
        duration_s=duration,
        scenario=scenario,
        waveform=waveform,
        send_interval_s=send_interval,
        skew_s=skew_s,
        seed=seed,
    )
    if waveform not in WAVEFORMS:
        raise typer.BadParameter(f"waveform must be one of {', '.join(WAVEFORMS)}")
    client = opts.client()
    if sensor_token:
        sim = [SimSensor(name=f"token-{i + 1}", token=t) for i, t in enumerate(sensor_token)]
    elif project:
        sim = prepare_sensors(client, project, sensors, rate_hz=rate)
    else:
        raise typer.BadParameter("give --project (sim-1..N sensors) or --sensor-token")
    session: dict[str, Any] | None = None
    if capture_run:
        _attach(client, capture_run, sim)
        session = dict(client.start_capture(capture_run, notes=f"etp simulate ({scenario})"))
    live = sys.stderr.isatty() and not quiet and not opts.as_json
    try:
        result = run_simulation(client.url, sim, config, live=live, quiet=quiet or opts.as_json)
    finally:
        if session is not None:
            client.stop_capture(session["id"])
    output: dict[str, Any] = result.as_dict()
    if session is not None:
        output["capture_session"] = _stopped_session(client, session["id"], summary_timeout)
    if opts.as_json:
        print_json(output)
        return
    console.print(_table(result))
    summary = (output.get("capture_session") or {}).get("summary")
    if summary:
        console.print(
            f"capture session {session and session['id']}: {summary.get('points')} points, "
            f"coverage {summary.get('coverage')}",
            highlight=False,
        )
