"""``etp projects|experiments|runs ...``: list, create, and logging metrics from the shell."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from etp_client.cli.common import console, handle_errors, options, show

projects_app = typer.Typer(help="Projects you are a member of.", no_args_is_help=True)
experiments_app = typer.Typer(help="Experiments of a project.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs of an experiment.", no_args_is_help=True)

PROJECT_COLUMNS = ("id", "name", "role", "created_at")
EXPERIMENT_COLUMNS = ("id", "name", "status", "tags", "created_at")
RUN_COLUMNS = ("id", "name", "status", "tags", "created_at")

Limit = Annotated[int | None, typer.Option(help="at most this many")]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="a tag (repeatable)")]


@projects_app.command("list")
@handle_errors
def projects_list(
    ctx: typer.Context, q: Annotated[str | None, typer.Option()] = None, limit: Limit = None
) -> None:
    """Your projects, newest first."""
    opts = options(ctx)
    show(opts, opts.client().list_projects(q=q, limit=limit), PROJECT_COLUMNS)


@projects_app.command("create")
@handle_errors
def projects_create(
    ctx: typer.Context, name: str, description: Annotated[str, typer.Option()] = ""
) -> None:
    """Create a project (you become its owner)."""
    opts = options(ctx)
    show(opts, opts.client().create_project(name, description=description))


@experiments_app.command("list")
@handle_errors
def experiments_list(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", "-p", help="project id")],
    status: Annotated[str | None, typer.Option()] = None,
    tag: Tags = None,
    q: Annotated[str | None, typer.Option()] = None,
    limit: Limit = None,
) -> None:
    opts = options(ctx)
    found = opts.client().list_experiments(project, status=status, tags=tag, q=q, limit=limit)
    show(opts, found, EXPERIMENT_COLUMNS)


@experiments_app.command("create")
@handle_errors
def experiments_create(
    ctx: typer.Context,
    name: str,
    project: Annotated[str, typer.Option("--project", "-p", help="project id")],
    description: Annotated[str, typer.Option()] = "",
    experiment_type: Annotated[str, typer.Option("--type")] = "",
    tag: Tags = None,
) -> None:
    opts = options(ctx)
    created = opts.client().create_experiment(
        project, name, description=description, experiment_type=experiment_type, tags=tag or ()
    )
    show(opts, created)


@runs_app.command("list")
@handle_errors
def runs_list(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    status: Annotated[str | None, typer.Option()] = None,
    tag: Tags = None,
    q: Annotated[str | None, typer.Option()] = None,
    sort: Annotated[str | None, typer.Option(help="-created_at, created_at, name, -name")] = None,
    limit: Limit = None,
) -> None:
    """An experiment's runs, or search a whole project's runs."""
    if experiment is None and project is None:
        raise typer.BadParameter("give --experiment or --project")
    opts = options(ctx)
    found = opts.client().list_runs(
        experiment_id=experiment,
        project_id=project,
        status=status,
        tags=tag,
        q=q,
        sort=sort,
        limit=limit,
    )
    show(opts, found, RUN_COLUMNS)


def _param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"expected KEY=VALUE, got {text!r}")
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    return key, value


@runs_app.command("create")
@handle_errors
def runs_create(
    ctx: typer.Context,
    name: str,
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="experiment id")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="KEY=VALUE (JSON values allowed)")
    ] = None,
    tag: Tags = None,
    notes: Annotated[str, typer.Option()] = "",
    start: Annotated[bool, typer.Option(help="mark it running at once")] = False,
) -> None:
    opts = options(ctx)
    client = opts.client()
    run = client.create_run(
        experiment, name, params=dict(_param(p) for p in param or ()), tags=tag or (), notes=notes
    )
    if start:
        run = client.set_run_status(run["id"], "running")
    show(opts, run)


@runs_app.command("status")
@handle_errors
def runs_status(ctx: typer.Context, run_ids: list[str], status: str) -> None:
    """Set the status of one or more runs (all or nothing)."""
    opts = options(ctx)
    client = opts.client()
    if len(run_ids) == 1:
        show(opts, client.set_run_status(run_ids[0], status))
    else:
        show(opts, client.batch_run_status(run_ids, status), RUN_COLUMNS)


def _metrics_from_file(path: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        data = orjson.loads(text)
        return list(data["metrics"] if isinstance(data, dict) else data)
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        entry: dict[str, Any] = {"name": row["name"], "value": float(row["value"])}
        if row.get("step"):
            entry["step"] = int(row["step"])
        if row.get("ts"):
            entry["ts"] = row["ts"]
        out.append(entry)
    return out


@runs_app.command("log-metrics")
@handle_errors
def runs_log_metrics(
    ctx: typer.Context,
    run_id: str,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="NAME=VALUE (repeatable)")
    ] = None,
    step: Annotated[int | None, typer.Option()] = None,
    file: Annotated[
        str | None,
        typer.Option("--file", "-f", help="CSV (name,value[,step,ts]) or JSON; - for stdin"),
    ] = None,
) -> None:
    """Log metric values to a run (chunked to the server's per-request limit)."""
    entries: list[dict[str, Any]] = []
    for item in metric or ():
        name, value = _param(item)
        entry: dict[str, Any] = {"name": name, "value": float(value)}
        if step is not None:
            entry["step"] = step
        entries.append(entry)
    if file:
        entries.extend(_metrics_from_file(file))
    if not entries:
        raise typer.BadParameter("give --metric NAME=VALUE or --file")
    sent = options(ctx).client().log_metrics(run_id, entries)
    console.print(f"logged {sent} metric values to run {run_id}")
