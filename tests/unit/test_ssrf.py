"""The SSRF guard: address classification, URL checks, and refusal before any connection."""

import ipaddress

import httpcore
import pytest

from core.ssrf import Allowlist, GuardedBackend, GuardedHttpClient, UrlRefused, check_url
from core.ssrf import forbidden_reason as reason

REFUSED = {
    "127.0.0.1": "loopback",
    "::1": "loopback",
    "169.254.169.254": "link-local",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "10.1.2.3": "private",
    "172.16.5.4": "private",
    "192.168.0.10": "private",
    "100.64.0.1": "CGNAT",
    "100.127.255.254": "CGNAT",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "64:ff9b::a00:1": "NAT64 of private",  # 10.0.0.1
    "64:ff9b::7f00:1": "NAT64 of loopback",
    "64:ff9b:1::1": "local-use NAT64",
    "2002:7f00:1::1": "6to4 of loopback",
    "2002:a9fe:a9fe::1": "6to4 of link-local",
    "::127.0.0.1": "IPv4-compatible",
    "2001::1": "Teredo",
    "192.0.2.1": "private",  # documentation
    "240.0.0.1": "private",  # reserved
}
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize(("address", "why"), sorted(REFUSED.items()))
def test_non_global_addresses_are_refused_with_the_reason(address, why):
    assert reason(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", ALLOWED)
def test_global_unicast_addresses_pass(address):
    assert reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:9000/",
        "http://10.0.0.8/",
        "http://100.64.1.1/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pass@example.com/",
        "http:///nohost",
    ],
)
def test_urls_refused_without_an_allowlist(url):
    with pytest.raises(UrlRefused):
        check_url(url, Allowlist.parse([]))


def test_the_allowlist_admits_named_hosts_and_cidrs_only():
    allowlist = Allowlist.parse(["localhost", "10.0.0.0/8", "::1"])
    check_url("http://10.1.2.3/", allowlist)
    check_url("http://[::1]:8000/", allowlist)
    check_url("https://hooks.example.com/x", allowlist)  # names resolve at delivery time
    with pytest.raises(UrlRefused):
        check_url("http://127.0.0.1/", allowlist)
    with pytest.raises(UrlRefused):
        check_url("http://192.168.1.1/", allowlist)


class RecordingBackend:
    """Stands in for the real network: records connections, answers with a fixed peer."""

    def __init__(self, peer: str | None = None):
        self.calls: list[str] = []
        self.peer = peer

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.calls.append(host)
        return FakeStream(self.peer or host)


class FakeStream(httpcore.AsyncNetworkStream):
    def __init__(self, peer: str):
        self.peer = peer
        self.closed = False

    def get_extra_info(self, info):
        return (self.peer, 80) if info == "server_addr" else None

    async def aclose(self):
        self.closed = True


def _backend(answers: dict[str, list[str]], allowlist=(), peer=None):
    async def resolve(host, port):
        return answers[host]

    backend = GuardedBackend(Allowlist.parse(allowlist), resolver=resolve)
    backend.inner = RecordingBackend(peer)
    return backend


async def test_a_name_resolving_to_any_forbidden_address_is_refused_before_connecting():
    backend = _backend({"mixed.example": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.1 is loopback"):
        await backend.connect_tcp("mixed.example", 80)
    assert backend.inner.calls == []
    backend = _backend({"metadata.example": ["169.254.169.254"]})
    with pytest.raises(UrlRefused, match="link-local"):
        await backend.connect_tcp("metadata.example", 80)
    assert backend.inner.calls == []


async def test_the_checked_ip_is_what_gets_connected_and_the_peer_is_checked_again():
    backend = _backend({"hooks.example": ["93.184.216.34"]})
    stream = await backend.connect_tcp("hooks.example", 443)
    assert backend.inner.calls == ["93.184.216.34"]  # pinned: no second DNS look-up
    assert not stream.closed
    # A connection that lands elsewhere (a proxy, a rebinding trick) is closed and refused.
    backend = _backend({"hooks.example": ["93.184.216.34"]}, peer="10.0.0.1")
    with pytest.raises(UrlRefused, match=r"connected to 10\.0\.0\.1"):
        await backend.connect_tcp("hooks.example", 443)


async def test_allowlisted_hosts_and_cidrs_may_reach_local_addresses():
    backend = _backend({"localhost": ["127.0.0.1"]}, allowlist=["localhost"])
    await backend.connect_tcp("localhost", 8080)
    backend = _backend({"receiver.internal": ["10.2.3.4"]}, allowlist=["10.0.0.0/8"])
    await backend.connect_tcp("receiver.internal", 8080)
    assert backend.inner.calls == ["10.2.3.4"]


async def test_the_client_refuses_literal_forbidden_urls_without_a_request():
    client = GuardedHttpClient(Allowlist.parse([]))
    try:
        for url in ("http://[::ffff:127.0.0.1]:9/", "http://169.254.169.254/", "http://[::1]:9/"):
            with pytest.raises(UrlRefused):
                await client.post(url, b"{}", [], 1.0)
    finally:
        await client.aclose()
