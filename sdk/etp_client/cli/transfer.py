"""``etp artifacts upload|download|list``, ``etp telemetry send`` and ``etp export ...``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from etp_client.cli.common import (
    console,
    download_progress,
    err_console,
    handle_errors,
    options,
    show,
)
from etp_client.points import chunks, detect_format, parse_csv, parse_json, parse_lines

artifacts_app = typer.Typer(help="Files attached to runs.", no_args_is_help=True)
telemetry_app = typer.Typer(help="Send telemetry as a sensor.", no_args_is_help=True)
export_app = typer.Typer(
    help="Download exports (with a progress bar; resumable).", no_args_is_help=True
)

ARTIFACT_COLUMNS = ("id", "name", "size_bytes", "sha256", "created_at")
Output = Annotated[Path, typer.Option("--output", "-o", help="file to write")]
Format = Annotated[str, typer.Option("--format", help="csv or json (telemetry: also parquet)")]
Resume = Annotated[bool, typer.Option(help="continue a partial download (.part file)")]


@artifacts_app.command("upload")
@handle_errors
def artifacts_upload(
    ctx: typer.Context,
    run_id: str,
    path: Path,
    name: Annotated[str | None, typer.Option(help="display name (default: file name)")] = None,
    kind: Annotated[str | None, typer.Option("--type", help="e.g. model, dataset, plot")] = None,
) -> None:
    opts = options(ctx)
    show(opts, opts.client().upload_artifact(run_id, path, name=name, type=kind))


@artifacts_app.command("list")
@handle_errors
def artifacts_list(ctx: typer.Context, run_id: str) -> None:
    opts = options(ctx)
    show(opts, opts.client().list_artifacts(run_id), ARTIFACT_COLUMNS)


@artifacts_app.command("download")
@handle_errors
def artifacts_download(ctx: typer.Context, artifact_id: str, output: Output) -> None:
    client = options(ctx).client()
    with download_progress(f"artifact {artifact_id[:8]}", sys.stderr.isatty()) as progress:
        client.download_artifact(artifact_id, output, progress=progress)
    console.print(f"saved {output}")


@telemetry_app.command("send")
@handle_errors
def telemetry_send(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="file, or - for stdin")] = "-",
    sensor_token: Annotated[
        str, typer.Option(envvar="ETP_SENSOR_TOKEN", help="the sensor's token")
    ] = "",
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, json or line (default: detected)")
    ] = None,
    precision: Annotated[str, typer.Option(help="line protocol timestamp unit")] = "ns",
    batch_size: Annotated[int, typer.Option(help="points per request (max 10000)")] = 5000,
) -> None:
    """Send points from CSV (ts,value[,meta...]), JSON or InfluxDB line protocol."""
    if not sensor_token:
        raise typer.BadParameter("give --sensor-token or set ETP_SENSOR_TOKEN")
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    kind = fmt or detect_format(text, None if source == "-" else source)
    items: list[Any]
    if kind == "line":
        items = parse_lines(text)
    elif kind == "csv":
        items = parse_csv(text)
    elif kind == "json":
        items = parse_json(text)
    else:
        raise typer.BadParameter("format must be csv, json or line")
    client = options(ctx).client()
    totals = {"sent": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
    codes: dict[str, int] = {}
    size = max(1, min(batch_size, 10_000))
    with Progress(console=err_console, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("sending", total=len(items))
        for batch in chunks(items, size):
            if kind == "line":
                result = client.send_telemetry(sensor_token, lines=list(batch), precision=precision)
            else:
                result = client.send_telemetry(sensor_token, list(batch))
            totals["sent"] += len(batch)
            totals["accepted"] += result["accepted"]
            totals["duplicates"] += result.get("duplicates", 0)
            totals["rejected"] += len(result["rejected"])
            for rejection in result["rejected"]:
                codes[rejection["code"]] = codes.get(rejection["code"], 0) + 1
            progress.advance(task, len(batch))
    show(options(ctx), {**totals, "rejected_by_code": codes})


def _download(ctx: typer.Context, label: str, call: Any, output: Path) -> None:
    with download_progress(label, sys.stderr.isatty()) as progress:
        call(progress)
    console.print(f"saved {output} ({output.stat().st_size} bytes)")


@export_app.command("runs")
@handle_errors
def export_runs(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", "-p")],
    output: Output,
    fmt: Format = "csv",
    status: Annotated[str | None, typer.Option()] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    resume: Resume = True,
) -> None:
    """A project's runs (params as columns) as CSV or JSON."""
    client = options(ctx).client()
    filters = {"status": status, "experiment_id": experiment}
    _download(
        ctx,
        "runs",
        lambda p: client.export_runs(
            project, output, format=fmt, progress=p, resume=resume, **filters
        ),
        output,
    )


@export_app.command("experiments")
@handle_errors
def export_experiments(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", "-p")],
    output: Output,
    fmt: Format = "csv",
) -> None:
    client = options(ctx).client()
    _download(
        ctx,
        "experiments",
        lambda p: client.export_experiments(project, output, format=fmt, progress=p),
        output,
    )


@export_app.command("telemetry")
@handle_errors
def export_telemetry(
    ctx: typer.Context,
    output: Output,
    sensor: Annotated[list[str] | None, typer.Option("--sensor", "-s", help="sensor id")] = None,
    run: Annotated[str | None, typer.Option("--run")] = None,
    capture_session: Annotated[str | None, typer.Option("--capture-session")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="ISO-8601 with offset")] = None,
    to: Annotated[str | None, typer.Option("--to")] = None,
    fmt: Format = "csv",
    value: Annotated[str | None, typer.Option(help="raw or physical")] = None,
) -> None:
    """Stored telemetry streamed to a file."""
    client = options(ctx).client()
    _download(
        ctx,
        "telemetry",
        lambda p: client.export_telemetry(
            output,
            format=fmt,
            sensor_ids=sensor,
            run_id=run,
            capture_session_id=capture_session,
            from_=from_,
            to=to,
            value=value,
            progress=p,
        ),
        output,
    )


@export_app.command("job")
@handle_errors
def export_job(
    ctx: typer.Context,
    output: Output,
    export_id: Annotated[str | None, typer.Option("--id", help="an existing export job")] = None,
    kind: Annotated[str | None, typer.Option(help="new job: telemetry, runs or metrics")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    run: Annotated[str | None, typer.Option("--run")] = None,
    capture_session: Annotated[str | None, typer.Option("--capture-session")] = None,
    sensor: Annotated[list[str] | None, typer.Option("--sensor", "-s")] = None,
    from_: Annotated[str | None, typer.Option("--from")] = None,
    to: Annotated[str | None, typer.Option("--to")] = None,
    fmt: Format = "csv",
) -> None:
    """Run an export job on the server (big exports), wait for it, download its file."""
    client = options(ctx).client()
    if export_id is None:
        if kind is None:
            raise typer.BadParameter("give --id of a job, or --kind to start one")
        export_id = client.create_export(
            kind,
            format=fmt,
            project_id=project,
            experiment_id=experiment,
            run_id=run,
            capture_session_id=capture_session,
            sensor_ids=sensor or (),
            from_=from_,
            to=to,
        )["id"]
        err_console.print(f"export job {export_id} queued")
    job = client.wait_export(export_id)
    if job.get("status") != "succeeded":
        err_console.print(f"export {export_id} {job.get('status')}: {job.get('error')}")
        raise typer.Exit(1)
    job_id = export_id
    _download(ctx, "export", lambda p: client.download_export(job_id, output, progress=p), output)
