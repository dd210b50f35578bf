"""``etp login``, ``etp logout``, ``etp whoami``."""

from __future__ import annotations

import socket
from typing import Annotated, Any

import httpx
import typer

from etp_client.cli.common import console, handle_errors, options, print_json
from etp_client.config import (
    DEFAULT_URL,
    config_path,
    read_config,
    remove_config_keys,
    write_config,
)
from etp_client.errors import Unauthenticated
from etp_client.transport import USER_AGENT, api_base, raise_for_error


def token_from_password(url: str, email: str, password: str, token_name: str) -> dict[str, Any]:
    """Signs in like the browser does, creates a personal API token, signs out again."""
    with httpx.Client(
        base_url=api_base(url), timeout=30.0, headers={"User-Agent": USER_AGENT}
    ) as http:
        response = http.post("/auth/login", json={"email": email, "password": password})
        raise_for_error(response)
        csrf = {"X-CSRF-Token": response.json()["csrf_token"]}
        response = http.post("/auth/tokens", json={"name": token_name}, headers=csrf)
        raise_for_error(response)
        token: dict[str, Any] = response.json()
        http.post("/auth/logout", headers=csrf)  # the browser-style session is not needed
    return token


@handle_errors
def login(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="server URL, e.g. http://127.0.0.1:8000")] = None,
    token: Annotated[str | None, typer.Option(help="an existing personal API token")] = None,
    email: Annotated[str | None, typer.Option(help="sign in with email and password")] = None,
    password: Annotated[
        str | None, typer.Option(help="asked for when not given", envvar="ETP_PASSWORD")
    ] = None,
    token_name: Annotated[str, typer.Option(help="name of the token created")] = "",
) -> None:
    """Save a server URL and API token (given, or created from email and password)."""
    opts = options(ctx)
    url = (url or opts.url or read_config().get("url") or DEFAULT_URL).rstrip("/")
    token = token or opts.token
    if token is None:
        if email is None:
            email = typer.prompt("email")
        if password is None:
            password = typer.prompt("password", hide_input=True)
        name = token_name or f"etp-cli@{socket.gethostname()}"
        token = token_from_password(url, email, password, name)["token"]
    from etp_client.client import Client

    with Client(url, token) as client:
        me = client.me()
    path = write_config({"url": url, "token": token})
    console.print(
        f"logged in to {url} as {me['user']['email']}; token saved in {path} (mode 0600)",
        highlight=False,
    )


@handle_errors
def logout(
    revoke: Annotated[bool, typer.Option(help="also revoke the token on the server")] = True,
) -> None:
    """Forget the saved token (revoking it on the server unless --no-revoke)."""
    saved = read_config()
    if not saved.get("token"):
        console.print("not logged in")
        return
    if revoke:
        from etp_client.client import Client

        with Client(saved.get("url"), saved["token"]) as client:
            try:
                for item in client.list_tokens():
                    # The server shows only a preview ("etpu_AbCd…") of each token.
                    shown = item["preview"].rstrip("…")
                    if shown and saved["token"].startswith(shown):
                        client.revoke_token(item["id"])
                        break
            except Unauthenticated:
                pass  # already revoked or expired
    remove_config_keys("token")
    console.print(f"token removed from {config_path()}")


@handle_errors
def whoami(ctx: typer.Context) -> None:
    """Show the signed-in user."""
    print_json(options(ctx).client().me())
