"""What every ``etp`` command shares: global options, the client, output, error exits."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from etp_client.client import Client
from etp_client.errors import EtpError

P = ParamSpec("P")
R = TypeVar("R")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class Options:
    url: str | None = None
    token: str | None = None
    as_json: bool = False
    _client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.url, self.token)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def options(ctx: typer.Context) -> Options:
    root = ctx.find_root()
    if not isinstance(root.obj, Options):
        root.obj = Options()
    return root.obj


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Prints an ``EtpError`` as one readable line and exits 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except EtpError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            if exc.details:
                err_console.print(orjson.dumps(exc.details).decode(), highlight=False)
            raise typer.Exit(1) from None
        except (ValueError, OSError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    sys.stdout.flush()


def show(opts: Options, value: Any, columns: Sequence[str] | None = None) -> None:
    """A list as a table (or JSON with ``--json``); a single object as JSON."""
    if opts.as_json or columns is None or not isinstance(value, list):
        print_json(value)
        return
    table = Table(show_edge=False, header_style="bold")
    for column in columns:
        # Ids are what the next command needs: never cut or wrapped.
        is_id = column == "id" or column.endswith("_id")
        table.add_column(column, no_wrap=is_id, min_width=36 if is_id else None)
    for item in value:
        table.add_row(*(_cell(item.get(c)) for c in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


@contextmanager
def download_progress(
    label: str, enabled: bool = True
) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar fed by ``download``'s ``progress(done, total)`` callback."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not enabled,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update
