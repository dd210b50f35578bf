"""Browser-session plumbing: quart-auth cookies, CSRF, Origin and CORS checks, login limits."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import Any
from urllib.parse import urlsplit

from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from quart import Quart, Response, g, request
from quart_auth import AuthUser, QuartAuth, current_user

from api.state import services
from core import identity
from core.errors import Forbidden, RateLimited, Unauthenticated
from core.principal import Principal
from core.redis_keys import rate_limit_prefix
from core.settings import Settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"


def cookie_secure(settings: Settings) -> bool:
    return settings.is_production or settings.base_url.startswith("https://")


def session_cookie_name(settings: Settings) -> str:
    return "__Host-etp_session" if cookie_secure(settings) else "etp_session"


def csrf_cookie_name(settings: Settings) -> str:
    return "__Host-etp_csrf" if cookie_secure(settings) else "etp_csrf"


def setup_auth(app: Quart, settings: Settings) -> None:
    app.secret_key = settings.secret_key.get()
    QuartAuth(
        app,
        cookie_name=session_cookie_name(settings),
        cookie_secure=cookie_secure(settings),
        cookie_samesite="Lax",
        cookie_http_only=True,
        duration=settings.session_absolute_timeout_s,
        salt="etp-session",
    )


def csrf_token_for(settings: Settings, session_secret: str) -> str:
    """The CSRF token bound to one session (signed double-submit)."""
    digest = hmac.new(
        settings.secret_key.get().encode(), b"csrf:" + session_secret.encode(), hashlib.sha256
    ).hexdigest()
    return digest


def allowed_origins(settings: Settings) -> set[str]:
    base = urlsplit(settings.base_url)
    return {f"{base.scheme}://{base.netloc}", *settings.cors_origins}


def check_origin(settings: Settings) -> None:
    """Refuses unsafe browser requests that come from an origin we do not serve or allow."""
    origin = request.headers.get("Origin")
    if origin is None and request.headers.get("Referer"):
        parts = urlsplit(request.headers["Referer"])
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin is not None and origin != "null" and origin not in allowed_origins(settings):
        raise Forbidden("cross-origin request refused", details={"origin": origin})
    if origin == "null":
        raise Forbidden("cross-origin request refused", details={"origin": origin})


def check_csrf(settings: Settings, session_secret: str) -> None:
    check_origin(settings)
    expected = csrf_token_for(settings, session_secret)
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(csrf_cookie_name(settings), "")
    if not (hmac.compare_digest(header, expected) and hmac.compare_digest(cookie, expected)):
        raise Forbidden(
            f"missing or wrong {CSRF_HEADER} header (read it from the "
            f"{csrf_cookie_name(settings)} cookie)",
            details={"reason": "csrf"},
        )


def set_csrf_cookie(response: Response, settings: Settings, token: str | None) -> None:
    if token is None:
        response.delete_cookie(
            csrf_cookie_name(settings), path="/", secure=cookie_secure(settings), samesite="Lax"
        )
        return
    response.set_cookie(
        csrf_cookie_name(settings),
        token,
        max_age=settings.session_absolute_timeout_s,
        path="/",
        secure=cookie_secure(settings),
        httponly=False,
        samesite="Lax",
    )


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def authenticate_request(settings: Settings) -> Principal:
    """The caller of a non-public route: an API token, else the session cookie."""
    db = services().database
    token = bearer_token()
    async with db.acquire() as conn:
        if token is not None:
            caller = await identity.resolve_api_token(conn, token=token)
            if caller is None:
                raise Unauthenticated("the API token is invalid, expired or revoked")
            return caller
        secret = current_user.auth_id
        if secret is None:
            raise Unauthenticated("sign in or send an API token")
        caller = await identity.resolve_session(conn, secret=secret, settings=settings)
    if caller is None:
        raise Unauthenticated("your session has ended; sign in again")
    g.session_secret = secret
    if request.method in UNSAFE_METHODS:
        check_csrf(settings, secret)
    return caller


def login_as(session_secret: str) -> None:
    from quart_auth import login_user

    login_user(AuthUser(session_secret), remember=True)


class LoginLimiter:
    """Moving-window limits per account and per client address, kept in Redis."""

    def __init__(self, settings: Settings, connection_pool: Any):
        uri = settings.redis_url.replace("redis://", "async+redis://", 1).replace(
            "rediss://", "async+rediss://", 1
        )
        # The api's own Redis pool, so the limiter opens and closes nothing of its own.
        self.storage = RedisStorage(
            uri,
            implementation="redispy",
            connection_pool=connection_pool,
            key_prefix=f"{rate_limit_prefix()}:login",
        )
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.per_account = parse(settings.login_attempts_per_account)
        self.per_address = parse(settings.login_attempts_per_address)

    async def hit(self, *, email: str, address: str) -> None:
        checks = (
            (self.per_account, "account", email.strip().lower()),
            (self.per_address, "address", address),
        )
        for item, kind, key in checks:
            if not await self.limiter.hit(item, kind, key):
                stats = await self.limiter.get_window_stats(item, kind, key)
                retry_after = max(1.0, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(
                    "too many sign-in attempts; wait and try again",
                    retry_after_s=retry_after,
                    details={"limit": kind},
                )

    async def reset_account(self, email: str) -> None:
        await self.limiter.clear(self.per_account, "account", email.strip().lower())
