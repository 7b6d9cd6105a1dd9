"""Which addresses a notification may go to: webhook targets are refused on private,
link-local and other internal addresses unless the configuration allows them.

A webhook URL comes from configuration, but a URL that reaches the cloud's
metadata service (``169.254.169.254``) or an internal admin port turns the
alert sender into a request forger. So every target host is resolved and each
address classified: loopback is allowed (a local relay, the tests), public
addresses are allowed, anything else (RFC 1918, CGNAT, link-local, unique
local, multicast, reserved, unspecified) is refused unless ``allow_private``
lists the host name or a network holding the address. The check runs at
config load and again before every send, and the request is then sent to the
address that passed (:func:`check_url` returns them), so a DNS answer that
changes between the check and the connection cannot redirect it.

Example:
    >>> guard = AddressGuard.parse(["10.1.0.0/16"])
    >>> guard.check_url("http://10.1.2.3:8080/hook")
    ('10.1.2.3',)
    >>> guard.check_url("http://192.168.0.7/hook")
    Traceback (most recent call last):
    ...
    xebench.errors.ConfigError: 192.168.0.7 is a private address; \
list it (or its network) in alerting.allow_private to allow it
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError

__all__ = ["AddressGuard", "Resolver", "classify", "default_resolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``host, port -> addresses`` (text); raises :class:`OSError` when the name does not resolve.
Resolver = Callable[[str, int], Sequence[str]]

# Not covered by ipaddress's is_private in Python 3.11: carrier-grade NAT space.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def default_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (TCP), in the resolver's order, without duplicates.

    Example:
        >>> default_resolver("127.0.0.1", 80)
        ['127.0.0.1']
    """
    seen: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0]).split("%")[0]  # drop an IPv6 zone index
        if address not in seen:
            seen.append(address)
    return seen


def classify(address: str | IPAddress) -> str | None:
    """Why ``address`` is refused by default (``"private"``, ``"link-local"``, ...), or
    None when it is allowed (public, or loopback).

    Example:
        >>> [classify(a) for a in ("127.0.0.1", "8.8.8.8", "169.254.169.254", "10.0.0.1",
        ...                        "::ffff:192.168.1.1", "100.64.0.1", "fd00::1")]
        [None, None, 'link-local', 'private', 'private', 'shared (CGNAT)', 'private']
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 reaches 10.0.0.1
    if ip.is_loopback:
        return None
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared (CGNAT)"
    return None


@dataclass(frozen=True)
class AddressGuard:
    """The ``allow_private`` list: host names and networks allowed despite :func:`classify`.

    Example:
        >>> guard = AddressGuard.parse(["hooks.internal", "fd00::/8"])
        >>> guard.hosts, [str(n) for n in guard.networks]
        (frozenset({'hooks.internal'}), ['fd00::/8'])
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    key: str = "alerting.allow_private"

    @classmethod
    def parse(cls, entries: Iterable[Any], where: str = "alerting.allow_private") -> AddressGuard:
        """Host names and CIDRs (a bare address is a /32 or /128); a
        :class:`~xebench.errors.ConfigError` naming ``where[i]`` for anything else.

        Example:
            >>> AddressGuard.parse(["10.0.0.0/8", "relay.local"]).allows("10.2.3.4", "x")
            True
            >>> AddressGuard.parse(["not a host"])
            Traceback (most recent call last):
            ...
            xebench.errors.ConfigError: alerting.allow_private[0]: not a host name or CIDR: \
'not a host'
        """
        hosts, networks = set(), []
        for i, entry in enumerate(entries):
            text = str(entry).strip() if isinstance(entry, str) else None
            try:
                if text is None:
                    raise ValueError
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            if text is None or not _is_host_name(text):
                raise ConfigError(f"{where}[{i}]: not a host name or CIDR: {entry!r}")
            hosts.add(text.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), where)

    def allows(self, address: str, host: str) -> bool:
        """Whether a request to ``host`` may go to ``address``.

        Example:
            >>> AddressGuard().allows("127.0.0.1", "localhost"), AddressGuard().allows(
            ...     "10.0.0.1", "db")
            (True, False)
        """
        if classify(address) is None or host.lower().rstrip(".") in self.hosts:
            return True
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks if ip.version == network.version)

    def check_url(
        self, url: str, resolver: Resolver | None = None, *, unresolved_ok: bool = False
    ) -> tuple[str, ...]:
        """The addresses of ``url``'s host that a request may use, in order.

        Raises :class:`~xebench.errors.ConfigError` when any address of the host is refused (a
        name that resolves to a public and a private address is refused: which
        one a connection gets is the resolver's choice) or, unless
        ``unresolved_ok`` (config load: DNS may be down), when it does not resolve.

        Example:
            >>> AddressGuard().check_url("https://[::1]:9443/x")
            ('::1',)
            >>> AddressGuard().check_url("http://h.example/x", lambda host, port: ["10.9.8.7"])
            Traceback (most recent call last):
            ...
            xebench.errors.ConfigError: h.example resolves to 10.9.8.7, a \
private address; list it (or its network) in alerting.allow_private to allow it
        """
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses: Sequence[str] = [str(literal)]
        else:
            try:
                addresses = list((resolver or default_resolver)(host, port))
            except OSError as error:
                if unresolved_ok:
                    return ()
                raise ConfigError(f"{host} does not resolve: {error}") from None
            if not addresses and not unresolved_ok:
                raise ConfigError(f"{host} does not resolve")
        for address in addresses:
            if not self.allows(address, host):
                what = f"{address} is" if literal is not None else f"{host} resolves to {address},"
                raise ConfigError(
                    f"{what} a {classify(address)} address; list it (or its network) in "
                    f"{self.key} to allow it"
                )
        return tuple(addresses)


def _is_host_name(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return 0 < len(text) <= 253 and all(
        0 < len(label) <= 63
        and label[0] != "-"
        and label[-1] != "-"
        and all(c.isalnum() or c == "-" for c in label)
        and label.isascii()
        for label in labels
    )
