"""Where outbound HTTP may go (webhooks, a geocoder): https to hosts on the public internet, never inside.

A URL is checked when it is registered and again at every delivery; the connection itself goes to
an address checked at connect time (``GuardedBackend``), so a name that resolves to a public
address when checked and to an internal one a moment later (DNS rebinding) cannot reach inside.
Plain http is allowed in development only, and only to loopback (a receiver on the developer's
machine). The resolver is injected, so that tests can make a name resolve anywhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
Env = Literal["development", "production"]

# One answer for every refusal: which internal host exists is nobody's business (no oracle).
NOT_ALLOWED = "must be an https URL of a host on the public internet"

# Cloud metadata services by name; by address they are link-local or private anyway, but named
# here so that a change to the address rules cannot let them through.
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "fd00:ec2::23")
)
_INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationNotAllowed(Exception):
    """The destination is not a public address (or not allowed in this mode)."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the operating system's resolver gives for ``host``."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as error:  # a name IDNA cannot encode (an empty or overlong label) has no address
        raise OSError(f"not a host name: {error}") from error
    # A stream socket's address is (host, port[, flowinfo, scope]); an IPv6 host may carry a %zone.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):  # ::a.b.c.d (deprecated form)
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast, and no metadata service (in any IPv6 form of an IPv4 address)."""
    for candidate in {address, embedded_ipv4(address)}:
        if candidate in _METADATA_ADDRESSES or not candidate.is_global:
            return False
        if candidate.is_multicast or candidate.is_reserved or candidate.is_link_local or candidate.is_unspecified:
            return False
        if candidate.is_loopback or (isinstance(candidate, ipaddress.IPv6Address) and candidate.is_site_local):
            return False
    return True


def is_loopback(address: IPAddress) -> bool:
    return embedded_ipv4(address).is_loopback or address.is_loopback


def address_allowed(address: IPAddress, env: Env) -> bool:
    return is_public(address) or (env == "development" and is_loopback(address))


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def url_problem(url: str, env: Env) -> str | None:
    """What is wrong with a webhook URL before any name is resolved (None: resolve and check)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return NOT_ALLOWED
    # The host as it goes on the wire (punycode): ``.host`` decodes IDNA and raises on labels the
    # URL parser accepted but IDNA 2008 does not (``xn--ls8h``, an emoji), which was a 500.
    host = _wire_host(parsed).lower().rstrip(".")
    if parsed.scheme not in {"http", "https"} or not host or parsed.userinfo:
        return NOT_ALLOWED
    literal = _literal(host)
    loopback_name = host == "localhost"
    on_this_machine = loopback_name or (literal is not None and is_loopback(literal))
    if parsed.scheme == "http" and (env != "development" or not on_this_machine):
        return NOT_ALLOWED  # plain http only for a receiver on the developer's own machine
    if literal is not None:
        return None if address_allowed(literal, env) else NOT_ALLOWED
    if host in _METADATA_NAMES or host.endswith(_INTERNAL_SUFFIXES) or ("." not in host and not loopback_name):
        return NOT_ALLOWED
    if loopback_name and env != "development":
        return NOT_ALLOWED
    return None


def _wire_host(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii", errors="replace")


async def checked_addresses(host: str, port: int, env: Env, resolver: Resolver) -> list[IPAddress]:
    """The addresses of ``host``, all of them allowed, or ``DestinationNotAllowed``.
    One internal address among public ones refuses the host: which one a client picks is not ours.
    A name that does not resolve raises ``OSError``."""
    literal = _literal(host)
    addresses = [literal] if literal is not None else await resolver(host, port)
    if not addresses or not all(address_allowed(address, env) for address in addresses):
        raise DestinationNotAllowed("the host resolves to an address that is not allowed")
    return addresses


async def registration_problem(url: str, env: Env, resolver: Resolver, *, timeout: float) -> str | None:
    """Checked when a webhook is registered: the URL, and every address its host resolves to now."""
    problem = url_problem(url, env)
    if problem is not None:
        return problem
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        async with asyncio.timeout(timeout):
            await checked_addresses(_wire_host(parsed), port, env, resolver)
    except (DestinationNotAllowed, OSError, TimeoutError):
        return NOT_ALLOWED  # not resolving reads the same as resolving inside
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the check at the one place that counts: it resolves the
    host itself, refuses unless every address is allowed, and connects to a checked address. The
    URL keeps the name, so the Host header, TLS SNI and certificate verification use the name."""

    def __init__(self, env: Env, resolver: Resolver) -> None:
        self._env = env
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await checked_addresses(host, port, self._env, self._resolver)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout("resolving timed out") from error
        except OSError as error:  # may heal: retried like a refused connection
            raise httpcore.ConnectError("the name does not resolve") from error
        failure: Exception = httpcore.ConnectError("no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationNotAllowed("unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(env: Env, resolver: Resolver) -> httpx.AsyncHTTPTransport:
    """httpx's transport with its connection pool on the guarded backend (httpx takes no backend
    argument; its pool is the documented httpcore one). No proxies from the environment (a proxy
    would connect for us, unchecked); SSL_CERT_FILE / SSL_CERT_DIR still choose the trusted CAs."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=GuardedBackend(env, resolver)
    )
    return transport
