"""The SSRF guard for outgoing webhooks: only http(s), no redirects, global unicast peers only.

A URL is refused unless every address its host resolves to, and the address actually
connected to, is a global unicast address. Refused: loopback, private (RFC 1918, ULA),
link-local (including cloud metadata at 169.254.169.254), CGNAT 100.64/10, multicast,
unspecified, reserved and documentation ranges, and the IPv6 forms that embed one of those
(IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4
``2002::/16``; Teredo always). ``ETP_WEBHOOK_ALLOWLIST`` names hosts or CIDRs that may be
reached anyway (local receivers, tests).

Requests go through httpcore (httpx's engine) with a network backend that resolves the host
itself, checks every address, connects to a checked IP (so DNS cannot change between check and
connect) and checks the peer of the connection again. TLS still verifies the host name. httpcore
never follows redirects and ignores proxy environment variables.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
MAX_RESPONSE_BYTES = 4096


class UrlRefused(Exception):
    """The URL or one of its addresses may not be called (the message says why)."""


class DeliveryFailed(Exception):
    """The request did not produce a response (connect error, timeout, protocol error)."""


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a global unicast address, or None when it is one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            inner = forbidden_reason(ip.ipv4_mapped)
            return f"IPv4-mapped {inner}" if inner else None
        if ip in _NAT64_LOCAL:
            return "local-use NAT64"
        if ip in _NAT64:
            inner = forbidden_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            return f"NAT64 of {inner}" if inner else None
        if ip.sixtofour is not None:
            inner = forbidden_reason(ip.sixtofour)
            return f"6to4 of {inner}" if inner else None
        if ip.teredo is not None:
            return "Teredo"
        if ip in _IPV4_COMPATIBLE and not ip.is_unspecified and not ip.is_loopback:
            return "IPv4-compatible"
        if ip.is_site_local:
            return "site-local"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("CGNAT", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return name
    return None if ip.is_global else "not globally routable"


@dataclass(frozen=True, slots=True)
class Allowlist:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """Host names and IPs/CIDRs (``ETP_WEBHOOK_ALLOWLIST`` entries)."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().strip("[]")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_ip(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


def check_address(ip: IPAddress, allowlist: Allowlist, host: str = "") -> None:
    """Raises ``UrlRefused`` unless ``ip`` is global unicast or allowlisted."""
    if (host and allowlist.allows_host(host)) or allowlist.allows_ip(ip):
        return
    reason = forbidden_reason(ip)
    if reason is not None:
        raise UrlRefused(f"address {ip} is {reason} (not in ETP_WEBHOOK_ALLOWLIST)")


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, allowlist: Allowlist) -> None:
    """Static checks of a subscription URL (resolution happens at delivery time)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"the URL is not valid: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("only http:// and https:// URLs are allowed")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("credentials in the URL are not allowed; put them in the path or query")
    if port == 0:
        raise UrlRefused("port 0 is not allowed")
    ip = _literal_ip(parts.hostname)
    if ip is not None:
        check_address(ip, allowlist)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, connects to a checked IP, checks the peer again."""

    def __init__(self, allowlist: Allowlist, resolver: Resolver = system_resolver):
        self.allowlist = allowlist
        self.resolver = resolver
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = _literal_ip(host)
        try:
            addresses = (
                [literal]
                if literal
                else [
                    ipaddress.ip_address(a.split("%", 1)[0])
                    for a in await self.resolver(host, port)
                ]
            )
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        for ip in addresses:  # all of them, so a mixed answer cannot slip one through
            check_address(ip, self.allowlist, host)
        error: Exception | None = None
        for ip in addresses:
            try:
                stream = await self.inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
                continue
            peer = stream.get_extra_info("server_addr")
            try:
                if not peer:
                    raise httpcore.ConnectError(f"the connection to {ip} closed at once")
                peer_ip = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
                if peer_ip != ip:
                    raise UrlRefused(f"connected to {peer_ip}, not the checked {ip}")
                check_address(peer_ip, self.allowlist, host)
            except BaseException:
                await stream.aclose()
                raise
            return stream
        raise error or httpcore.ConnectError(f"cannot connect to {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UrlRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class HttpResult:
    status_code: int
    body: str  # the first MAX_RESPONSE_BYTES of the response, decoded leniently
    latency_ms: float
    location: str | None = None


class GuardedHttpClient:
    """POSTs to webhook URLs through the guard; one per worker process."""

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        resolver: Resolver = system_resolver,
        max_connections: int = 100,
    ):
        self.allowlist = allowlist
        self.pool = httpcore.AsyncConnectionPool(
            max_connections=max_connections,
            max_keepalive_connections=0,  # a fresh, freshly checked connection per request
            network_backend=GuardedBackend(allowlist, resolver),
        )

    async def post(
        self, url: str, body: bytes, headers: Sequence[tuple[str, str]], timeout_s: float
    ) -> HttpResult:
        """One request, no redirects followed; raises ``UrlRefused`` or ``DeliveryFailed``."""
        check_url(url, self.allowlist)
        started = time.perf_counter()
        limits = {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}
        try:
            async with asyncio.timeout(timeout_s):
                async with self.pool.stream(
                    "POST",
                    url,
                    headers=list(headers),
                    content=body,
                    extensions={"timeout": limits},
                ) as response:
                    data = b""
                    async for part in response.aiter_stream():
                        data += part
                        if len(data) >= MAX_RESPONSE_BYTES:
                            break
                    location = next(
                        (
                            v.decode("latin-1")
                            for k, v in response.headers
                            if k.lower() == b"location"
                        ),
                        None,
                    )
        except UrlRefused:
            raise
        except TimeoutError:
            raise DeliveryFailed(f"no response within {timeout_s:g} s") from None
        except httpcore.TimeoutException as exc:
            raise DeliveryFailed(f"timed out: {exc or type(exc).__name__}") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:500]) from None
        latency_ms = (time.perf_counter() - started) * 1000
        text = data[:MAX_RESPONSE_BYTES].decode("utf-8", errors="replace")
        return HttpResult(response.status, text, latency_ms, location)

    async def aclose(self) -> None:
        await self.pool.aclose()
