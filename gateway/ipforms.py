"""IPv4-carrying IPv6 forms and an `ip` text's client address: for `ip_truncate` and the guard.

Sources: RFC 4291 section 2.5.5 (IPv4-compatible, IPv4-mapped), RFC 2765 (IPv4-translated),
RFC 6052 and RFC 8215 (NAT64 64:ff9b::/96, 64:ff9b:1::/48), RFC 3056 (6to4 2002::/16),
RFC 4380 (Teredo 2001::/32), RFC 5214 (ISATAP interface identifiers ::0:5efe:a.b.c.d and
::200:5efe:a.b.c.d, which only the guard needs: any prefix of /64 or less drops them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import Final

__all__ = [
    "CARRIERS",
    "CARRIERS_BY_START",
    "LOCAL_USE",
    "Carrier",
    "carried_ipv4s",
    "client_address",
    "embedded_ipv4s",
    "is_address",
]


@dataclass(frozen=True, slots=True)
class Carrier:
    """An IPv6 form carrying IPv4 addresses: its leading bytes and the IPv4s' byte offsets.

    `ip_truncate` keeps the leading bytes and truncates each IPv4; `inverted_at` is the offset
    of the one stored bit-inverted (Teredo's client).
    """

    lead: bytes
    v4_at: tuple[int, ...]
    inverted_at: int = -1


CARRIERS: Final = (
    Carrier(bytes(10) + b"\xff\xff", (12,)),  # IPv4-mapped
    Carrier(bytes(12), (12,)),  # IPv4-compatible
    Carrier(bytes(8) + b"\xff\xff\0\0", (12,)),  # IPv4-translated
    Carrier(b"\0\x64\xff\x9b" + bytes(8), (12,)),  # NAT64
    Carrier(b"\0\x64\xff\x9b\0\x01", (12,)),  # NAT64 local-use
    Carrier(b"\x20\x02", (2,)),  # 6to4
    Carrier(b"\x20\x01\0\0", (4, 12), inverted_at=12),  # Teredo
)
# by the first two bytes, so an ordinary IPv6 address costs one dict lookup
CARRIERS_BY_START: Final = {
    start: tuple(c for c in CARRIERS if c.lead[:2] == start)
    for start in {c.lead[:2] for c in CARRIERS}
}


_ISATAP_IDS: Final = (b"\0\0\x5e\xfe", b"\x02\0\x5e\xfe")
# RFC 6052 section 2.2: inside the local-use prefix 64:ff9b:1::/48 (RFC 8215) a network may
# translate with a /48, /56 or /64 prefix too, which place the IPv4 around the reserved octet
# (bits 64-71). The guard reads every layout; `ip_truncate` keeps none of those bytes.
LOCAL_USE: Final = b"\0\x64\xff\x9b\0\x01"
_LOCAL_USE_LAYOUTS: Final = ((6, 7, 9, 10), (7, 9, 10, 11), (9, 10, 11, 12))


def embedded_ipv4s(address: str) -> tuple[str, ...]:
    """The dotted IPv4 addresses an IPv6 address carries (Teredo: server and client), or ().

    `address` is any text; one that is not an IPv6 address carries none. `::` and `::1` (the
    unspecified and loopback addresses, inside the compatible range) carry none either.
    """
    try:
        packed = inet_pton(AF_INET6, address)
    except (OSError, ValueError):
        return ()
    return carried_ipv4s(packed)


def carried_ipv4s(packed: bytes) -> tuple[str, ...]:
    """`embedded_ipv4s` of an IPv6 address already parsed: its 16 bytes (`inet_pton`)."""
    found = []
    for carrier in CARRIERS_BY_START.get(packed[:2], ()):
        if packed.startswith(carrier.lead):
            for at in carrier.v4_at:
                v4 = packed[at : at + 4]
                if at == carrier.inverted_at:
                    v4 = bytes(b ^ 0xFF for b in v4)
                found.append(v4)
            break
    if packed[8:12] in _ISATAP_IDS:
        found.append(packed[12:])
    if packed.startswith(LOCAL_USE):  # (an all-zero reading is no host's)
        readings = (bytes(packed[i] for i in layout) for layout in _LOCAL_USE_LAYOUTS)
        found += (v4 for v4 in readings if any(v4) and v4 not in found)
    if not found:
        return ()
    return tuple(
        inet_ntop(AF_INET, v4) for v4 in found if int.from_bytes(v4) > 1 or packed[:12] != bytes(12)
    )


# The shapes of one element read: an address (what `inet_pton` takes is decided after), with a
# zone (`fe80::1%eth0`), in brackets with a zone and a port (`[2001:db8::1]:443`), or an IPv4
# address with a port (`192.0.2.77:8080`). Nothing else: no white space or other character
# inside (`urllib.parse.urlsplit` was tried: it deletes tabs and line breaks anywhere and takes
# a bracketed host from anywhere in the text, so it truncated an address the value guard had
# not read, or a proxy's; found by the eighteenth attack round).
_ZONE = r"(?:%[0-9A-Za-z_.\-]{1,32})?"
_PORT = r"(?::[0-9]{1,5})"
_CLIENT = re.compile(
    rf"(?P<ipv4>[0-9.]+){_PORT}"
    rf"|\[(?P<bracketed>[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*){_ZONE}\]{_PORT}?"
    rf"|(?P<bare>[0-9A-Fa-f:.]+){_ZONE}"
)


def client_address(value: str) -> str | None:
    """The address an `ip` text names, or None when it is in no shape read here.

    The text itself when it is an address; else its first comma-separated element (in an
    X-Forwarded-For list the client, then each proxy), trimmed of white space at its ends, in
    one of the shapes `_CLIENT` reads: an address with an IPv6 zone, `[address]:port`,
    `IPv4:port` (a port 0-65535). Whether what is left is an address, the caller's `inet_pton`
    decides.
    """
    if is_address(value):
        return value
    element = _CLIENT.fullmatch(value.split(",", 1)[0].strip())
    if element is None:
        return None
    port = "" if element["bare"] else element.group(0).rpartition(":")[2].rpartition("]")[2]
    if port and int(port) > 65535:
        return None
    return element["bare"] or element["bracketed"] or element["ipv4"]


def is_address(text: str) -> bool:
    """True when `text` is one IP address, as `inet_pton` reads it."""
    try:
        inet_pton(AF_INET6 if ":" in text else AF_INET, text)
    except (OSError, ValueError):
        return False
    return True
