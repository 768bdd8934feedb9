"""Which addresses a webhook may call (pure): public ones, plus what the operator allows.

A webhook's URL is written by whoever may upload resources, and its answer may come back in a
`.finished` event: without a rule it reaches the cloud metadata service, the cluster and the host
itself. Like Keptn's webhook-service deny-list, a call is refused when its host *resolves* to a
loopback, link-local (169.254.169.254), private (10/8, 172.16/12, 192.168/16), shared (CGNAT 100.64/10),
unique-local or link-local IPv6, unspecified, multicast or otherwise non-global address (IPv4-mapped
and 6to4/Teredo IPv6 addresses are judged by the IPv4 address they carry).

Internal targets are the operator's call: TIDEGATE_WEBHOOK_ALLOW_HOSTS lists host names (exact,
case-insensitive), IP addresses and CIDR networks, comma-separated, e.g.
`TIDEGATE_WEBHOOK_ALLOW_HOSTS=hooks.internal.example,10.20.0.0/16,127.0.0.1`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

ALLOW_VARIABLE = "TIDEGATE_WEBHOOK_ALLOW_HOSTS"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _carried_ipv4(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if carried is not None:
            return carried
    return address


def non_public(address: IPAddress) -> str | None:
    """What kind of non-public address this is (`loopback`, `link-local`, ...), or None if it is public."""
    address = _carried_ipv4(address)
    for kind, test in (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                       ("link-local", address.is_link_local), ("multicast", address.is_multicast),
                       ("private", address.is_private), ("non-global", not address.is_global)):
        if test:
            return kind
    return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public addresses, plus the allowed host names and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, entries: Iterable[str]) -> AddressPolicy:
        """From allow-list entries; ValueError naming the entry that is neither a name, an address nor a CIDR."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if any(c.isdigit() for c in entry) and ("/" in entry or ":" in entry or entry.replace(".", "").isdigit()):
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                    continue
                except ValueError:
                    raise ValueError(f"{ALLOW_VARIABLE}: {entry!r} is neither a host name, an IP address nor a "
                                     "CIDR network such as 10.0.0.0/8") from None
            hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def refusal(self, host: str, address: str) -> str | None:
        """Why calling `host` at `address` is refused, or None when it is allowed."""
        if host.lower().rstrip(".") in self.hosts:
            return None
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        kind = non_public(ip)
        if kind is None or any(_carried_ipv4(ip) in network or ip in network for network in self.networks):
            return None
        shown = host if host == address else f"{host} ({address})"
        return (f"{shown} is a {kind} address, which webhooks may not call; an operator who wants this target "
                f"adds the host or its network to {ALLOW_VARIABLE}")
