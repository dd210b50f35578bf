"""``etp``: the ETP command line (``etp --help``)."""

from __future__ import annotations

from typing import Annotated

import typer

from etp_client import __version__
from etp_client.cli import auth, resources, simulate, transfer
from etp_client.cli.common import Options

app = typer.Typer(
    name="etp",
    help="ETP command line: projects, experiments, runs, telemetry, exports, a sensor simulator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"etp-client {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(envvar="ETP_URL", help="server URL (else the saved one)")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="ETP_TOKEN", help="API token (else the saved one)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    ctx.obj = opts = Options(url=url, token=token, as_json=as_json)
    ctx.call_on_close(opts.close)


app.command("login")(auth.login)
app.command("logout")(auth.logout)
app.command("whoami")(auth.whoami)
app.add_typer(resources.projects_app, name="projects")
app.add_typer(resources.experiments_app, name="experiments")
app.add_typer(resources.runs_app, name="runs")
app.add_typer(transfer.artifacts_app, name="artifacts")
app.add_typer(transfer.telemetry_app, name="telemetry")
app.add_typer(transfer.export_app, name="export")
app.command("simulate")(simulate.simulate_command)


def main() -> None:
    app()
