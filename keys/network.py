"""The client's address: the one place that derives it, trusting ``X-Forwarded-For`` only from
the reverse proxies named in ``TRUSTED_PROXIES``.

gunicorn sets ``REMOTE_ADDR`` to the socket's peer. Behind nginx that peer is nginx, for every
citizen, so the address that rate limits count and the audit trail records must come from the
``X-Forwarded-For`` header the proxy appends to. That header is also what any client can write
itself, so it is read only when the peer is a trusted proxy, and then from right to left: each
entry was appended by the hop to its right; while that hop is a trusted proxy its entry is
believed, and the first address that is not a trusted proxy is the client. Anything further left
was written by the client (or by proxies we do not know) and is ignored.

- No ``TRUSTED_PROXIES`` (the default), or a peer that is not in it: the peer, whatever headers
  the request carries (a client talking straight to gunicorn cannot choose its address).
- A trusted peer without the header: the peer (a health check from the proxy's host).
- Every entry a trusted proxy: the leftmost one (a client inside the proxies' own network).
- A malformed entry (``unknown``, a name, garbage) where an address was due: nobody trustworthy
  vouches for what lies to its left, so the answer is the last trusted hop that was reached. That
  groups such requests under the proxy's address rather than letting them pick one.

Entries may carry a port (``192.0.2.1:5678``, ``[2001:db8::1]:443``); IPv4-mapped IPv6 addresses
(``::ffff:192.0.2.1``, from a dual-stack socket) count as their IPv4 address. ``TRUSTED_PROXIES``
may also contain ``unix``: a peer on a Unix socket (an empty ``REMOTE_ADDR``) is then trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNIX_SOCKET = "unix"

# More hops than any real chain of proxies; a longer header is not walked further.
MAX_HOPS = 32


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``values`` (addresses or CIDR networks) as networks; ``ValueError`` naming a bad one.

    ``unix`` is skipped here (it is not a network; :func:`client_ip` looks for it itself).
    """
    networks = []
    for value in values:
        value = value.strip()
        if not value or value.lower() == UNIX_SOCKET:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is neither an IP address nor a CIDR network") from None
    return tuple(networks)


def parse_address(value: str) -> IPAddress | None:
    """One address as a proxy or the WSGI server writes it, or ``None`` when it is not one.

    Accepts an optional port (``192.0.2.1:80``, ``[2001:db8::1]:80``) and unwraps IPv4-mapped
    IPv6 addresses; refuses names, ``unknown``, zone ids and anything else.
    """
    value = value.strip()
    if not value or len(value) > 64:
        return None
    if value.startswith("["):  # [IPv6] or [IPv6]:port
        end = value.find("]")
        if end == -1 or (value[end + 1 :] and not _is_port(value[end + 1 :])):
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # IPv4:port
        value, port = value.split(":")
        if not _is_port(":" + port):
            return None
    if "%" in value:  # a zone id names an interface of the sender, not a client
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit() and len(text) <= 6


@lru_cache(maxsize=8)
def _trusted(values: tuple[str, ...]) -> tuple[tuple[IPNetwork, ...], bool]:
    unix = any(value.strip().lower() == UNIX_SOCKET for value in values)
    return parse_networks(values), unix


def trusted_proxies() -> tuple[tuple[IPNetwork, ...], bool]:
    """The trusted networks of ``settings.TRUSTED_PROXIES``, and whether ``unix`` is among them."""
    return _trusted(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


def in_networks(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def forwarded_chain(request: HttpRequest) -> list[str]:
    """The entries of ``X-Forwarded-For``, left to right (several header lines are joined
    with commas by the WSGI server)."""
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return [entry.strip() for entry in header.split(",")] if header else []


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address, derived as the module's docstring says; ``None`` if unknown."""
    if request is None:
        return None
    networks, unix = trusted_proxies()
    raw_peer = request.META.get("REMOTE_ADDR") or ""
    peer = parse_address(raw_peer)
    if peer is None:
        if not (unix and raw_peer == ""):
            return None  # no address (or not one): never taken from a header
        trusted_peer = True
    else:
        trusted_peer = in_networks(peer, networks)
    if not trusted_peer:
        return str(peer)
    last_trusted: IPAddress | None = peer
    for entry in reversed(forwarded_chain(request)[-MAX_HOPS:]):
        address = parse_address(entry)
        if address is None:
            break  # malformed: nothing to its left is vouched for
        last_trusted = address
        if not in_networks(address, networks):
            return str(address)  # the first hop that is not one of our proxies: the client
    return str(last_trusted) if last_trusted is not None else None
