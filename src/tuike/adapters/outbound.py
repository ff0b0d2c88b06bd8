"""Outgoing HTTP that refuses to reach internal addresses (SSRF guard).

Every request to a URL that someone outside the platform chose (affiliate postbacks,
later merchant webhooks) goes through :func:`fetch`:

- the host is resolved first, and the request is refused when **any** of its addresses is
  loopback, private, link-local (cloud metadata 169.254.169.254), multicast, reserved,
  unspecified, shared (100.64.0.0/10) or otherwise not global, including IPv6 forms that
  embed such an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64);
- only ports 80 and 443 are allowed (any port for addresses in the allowed networks);
- the connection goes to the address that was checked, never to a second lookup (so DNS
  rebinding cannot switch it): plain http sends the original ``Host`` header, https
  also verifies the certificate against the original host name (SNI);
- redirects are not followed, the whole exchange has a deadline, and at most
  ``max_bytes`` of the answer are read.

``allow_networks`` (``TUIKE_OUTBOUND_ALLOW_NETWORKS``) lets tests and on-premises
installations reach chosen internal networks.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from tuike import __version__

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

DEFAULT_PORTS = frozenset({80, 443})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
USER_AGENT = f"tuike-postback/{__version__}"


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Parse comma-separated CIDRs (``127.0.0.0/8, ::1/128``); raise ValueError if bad."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if part:
            out.append(ipaddress.ip_network(part, strict=False))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Policy:
    """Where outgoing requests may go, and how long and how much they may take."""

    allow_networks: tuple[IPNetwork, ...] = ()
    ports: frozenset[int] = DEFAULT_PORTS
    timeout: float = 5.0
    max_bytes: int = 2048
    # Certificate verification: the system's CAs, or a context of its own (tests).
    verify: ssl.SSLContext | bool = True


@dataclass(frozen=True, slots=True)
class Answer:
    """What came of one request: a status code and the first bytes, or why not."""

    status_code: int | None = None
    body: bytes = b""
    error: str = ""
    refused: bool = False  # the guard refused the target: retrying cannot help
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """Tell whether the target answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def snippet(self, limit: int = 500) -> str:
        """Return the first characters of the answer as text."""
        return self.body.decode("utf-8", errors="replace")[:limit]


class Refused(Exception):
    """The target is not allowed (an internal address, a port, a scheme)."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Return the IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _bad(ip: IPAddress) -> str:
    """Return what makes an address internal ("" for a public one)."""
    for flag in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{flag}"):
            return f"a {flag.replace('_', '-')} address"
    if not ip.is_global:
        return "not a global address"
    return ""


def _allowed(ip: IPAddress, policy: Policy) -> bool:
    """Tell whether an address lies in one of the networks the operator allowed."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in policy.allow_networks if net.version == ip.version)


def refusal(ip: IPAddress, policy: Policy) -> str:
    """Return why the guard refuses an address ("" when it may be reached)."""
    if _allowed(ip, policy):
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    reason = _bad(ip)
    if not reason and isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_v4(ip):
            if _bad(inner):
                return f"an address that carries {inner} ({_bad(inner)})"
    return reason


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve a host name to its addresses, in the order the system prefers."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


def check_target(
    url: str, policy: Policy, resolver: Resolver = system_resolver
) -> tuple[str, int, list[IPAddress]]:
    """Resolve a URL's host; return (host, port, addresses) or raise Refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise Refused("only absolute http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise Refused("URLs with user credentials are not allowed")
    try:
        # The ASCII (IDNA) form is what is resolved, sent in Host and checked in TLS.
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused(f"{parts.hostname!r} is not a valid host name") from None
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(a) for a in resolver(host, port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise LookupError(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise LookupError(f"cannot resolve {host}: no address")
    for ip in addresses:
        reason = refusal(ip, policy)
        if reason:
            where = f"{host} is" if _is_literal(host) else f"{host} resolves to {ip},"
            raise Refused(f"{where} {reason}")
    if port not in policy.ports and not all(_allowed(ip, policy) for ip in addresses):
        ports = ", ".join(map(str, sorted(policy.ports)))
        raise Refused(f"port {port} is not allowed (only {ports})")
    return host, port, addresses


def fetch(url: str, policy: Policy, resolver: Resolver = system_resolver) -> Answer:
    """GET a URL through the guard; never raise for network trouble, answer it."""
    start = time.monotonic()
    try:
        host, port, addresses = check_target(url, policy, resolver)
    except Refused as exc:
        return Answer(error=f"refused: {exc}", refused=True, elapsed=time.monotonic() - start)
    except LookupError as exc:
        return Answer(error=str(exc), elapsed=time.monotonic() - start)
    deadline = start + policy.timeout
    error = ""
    # Try the checked addresses in order; only a failure to connect moves to the next.
    for ip in addresses[:3]:
        try:
            return _get(url, host, port, ip, policy, start, deadline)
        except httpx.ConnectError as exc:
            error = f"cannot connect to {ip}: {exc}"
        except httpx.TimeoutException:
            return Answer(error="timed out", elapsed=time.monotonic() - start)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return Answer(error=f"{type(exc).__name__}: {exc}", elapsed=time.monotonic() - start)
        except Exception as exc:  # a bug must not stop the queue: the attempt fails
            message = f"unexpected {type(exc).__name__}: {exc}"
            return Answer(error=message[:500], elapsed=time.monotonic() - start)
        if time.monotonic() >= deadline:
            break
    return Answer(error=error[:500] or "timed out", elapsed=time.monotonic() - start)


def _get(
    url: str, host: str, port: int, ip: IPAddress, policy: Policy, start: float, deadline: float
) -> Answer:
    parts = urlsplit(url)
    default_port = 443 if parts.scheme.lower() == "https" else 80
    host_header = host if port == default_port else f"{host}:{port}"
    if ":" in host and port == default_port:
        host_header = f"[{host}]"
    elif ":" in host:
        host_header = f"[{host}]:{port}"
    # Connect to the checked address; the name is kept for Host and for TLS (SNI and
    # the certificate check), so a second DNS answer can never redirect the request.
    target = httpx.URL(url).copy_with(host=str(ip), port=port)
    timeout = httpx.Timeout(max(0.1, deadline - time.monotonic()))
    with (
        httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            http2=False,
            verify=policy.verify,
        ) as client,
        client.stream(
            "GET",
            target,
            headers={
                "Host": host_header,
                "User-Agent": USER_AGENT,
                "Accept": "*/*",
                # Raw bytes: a compressed answer could inflate far past max_bytes.
                "Accept-Encoding": "identity",
            },
            extensions={"sni_hostname": host},
        ) as response,
    ):
        body = b""
        for chunk in response.iter_raw():
            body += chunk
            if len(body) >= policy.max_bytes or time.monotonic() >= deadline:
                break
        return Answer(
            status_code=response.status_code,
            body=body[: policy.max_bytes],
            elapsed=time.monotonic() - start,
        )
