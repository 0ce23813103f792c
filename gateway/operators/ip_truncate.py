"""ip_truncate: keep only the network prefix of an IP address (IPv4 /24, IPv6 /48 by default).

An IPv6 address that carries an IPv4 address is truncated as that IPv4 address, with
`ipv4_prefix`, and keeps its form: `::ffff:192.0.2.77` -> `::ffff:192.0.2.0` (its /48 would be
`::`, and 6to4's /48 would hold the whole IPv4). The forms (`gateway.ipforms.CARRIERS`), where
the IPv4 sits:

    IPv4-mapped       ::ffff:0:0/96     bits 96-127
    IPv4-compatible   ::/96             bits 96-127 (deprecated, still seen)
    IPv4-translated   ::ffff:0:0:0/96   bits 96-127
    NAT64             64:ff9b::/96      bits 96-127
    NAT64 local-use   64:ff9b:1::/48    bits 96-127, read as a /96 translation prefix; bits
                                        48-95 are zeroed, so other prefix lengths lose it all
    6to4              2002::/16         bits 16-47; subnet and interface id zeroed
    Teredo            2001::/32         server IPv4 bits 32-63, client IPv4 bit-inverted in
                                        96-127: both truncated (the client re-inverted), flags
                                        and port zeroed

Collectors also send more than a bare address; the address truncated is then the client's
(`client_address`): the first of an X-Forwarded-For list (`203.0.113.7, 10.0.0.1` ->
`203.0.113.0`; the proxies' addresses are dropped), without a port (`192.0.2.77:8080`,
`[2001:db8::1]:443`), brackets or an IPv6 zone (`fe80::1%eth0`); any other shape is dropped.

Uses socket.inet_pton/inet_ntop (no `ipaddress` objects on the hot path). A value that is not a
valid address in one of those shapes is dropped, never passed through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import Any, ClassVar, Final, Literal

from pydantic import Field

from gateway.ipforms import CARRIERS_BY_START as _CARRIERS_BY_START
from gateway.ipforms import Carrier, client_address
from gateway.operators.base import (
    DROP,
    INTERNAL,
    IP,
    OPAQUE,
    Operator,
    OperatorConfig,
    OperatorTools,
    Refusal,
    Synthesis,
)

# (option, address bits, most bits any sink may keep, most bits a partner sink may keep): past
# /30 an IPv4 prefix names at most 4 hosts; past /64 an IPv6 one is inside one subscriber's LAN.
PREFIX_LIMITS: Final = (("ipv4_prefix", 32, 30, 24), ("ipv6_prefix", 128, 64, 48))


class IpTruncateConfig(OperatorConfig):
    """The bits kept: `ipv4_prefix` 0..32 (default 24), `ipv6_prefix` 0..128 (default 48).

    `rules check` then applies PREFIX_LIMITS.
    """

    op: Literal["ip_truncate"]
    ipv4_prefix: int = Field(default=24, ge=0, le=32)
    ipv6_prefix: int = Field(default=48, ge=0, le=128)


def _truncator(size: int, prefix: int) -> Callable[[bytes], bytes]:
    """Packed address -> packed address with the host bits zeroed."""
    if prefix % 8 == 0:  # octet-aligned prefix: slicing is cheaper than integer masking
        keep, padding = prefix // 8, bytes(size - prefix // 8)
        return lambda packed: packed[:keep] + padding
    mask = ((1 << prefix) - 1) << (size * 8 - prefix)
    return lambda packed: (int.from_bytes(packed) & mask).to_bytes(size)


class IpTruncate(Operator):
    """Zero the host bits of an address (of the IPv4 inside an IPv4-carrying IPv6 address)."""

    name: ClassVar[str] = "ip_truncate"
    config_model: ClassVar[type[OperatorConfig]] = IpTruncateConfig
    field_classes: ClassVar[frozenset[str]] = frozenset({IP})

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        super().__init__(config, tools)
        assert isinstance(config, IpTruncateConfig)
        self._v4 = _truncator(4, config.ipv4_prefix)
        self._v6 = _truncator(16, config.ipv6_prefix)

    @classmethod
    def refusals(cls, config: OperatorConfig, audience: str) -> Iterator[Refusal]:
        """Prefixes past PREFIX_LIMITS: any sink's limit, or the partner limit if not internal."""
        for option, bits, limit, partner_limit in PREFIX_LIMITS:
            prefix = getattr(config, option)
            if prefix > limit:
                does = "keeps the whole address" if prefix == bits else "barely truncates"
                most = f"at most /{limit} on any sink"
                if audience != INTERNAL:  # name the limit that applies to this sink
                    most = f"at most /{partner_limit} for audience '{audience}'"
                message = f"{option} {prefix} {does}; {most} (use pseudonym to link, or drop)"
                yield Refusal((option,), message)
            elif audience != INTERNAL and prefix > partner_limit:
                message = f"a sink of audience '{audience}' may keep at most /{partner_limit}"
                yield Refusal((option,), f"{message}; got /{prefix}")

    def synthesis(self) -> Synthesis:
        """An address written whole (hex digits, dots, colons); OPAQUE when a prefix keeps it all.

        A whole address is the raw value: a sink that keeps one (an internal sink's waived
        refusal) has every output checked by value.
        """
        assert isinstance(self.config, IpTruncateConfig)
        if self.config.ipv4_prefix >= 32 or self.config.ipv6_prefix >= 128:
            return OPAQUE
        return Synthesis(alphabet="0123456789abcdef.:", truncates_ip=self.apply)

    def apply(self, value: Any) -> Any:
        """The address with its host bits zeroed; DROP for anything that is not an address.

        In an IPv6 form that carries IPv4 addresses (gateway.ipforms) each IPv4 is truncated.
        A list, a port, brackets or a zone around it: the client's address (`client_address`).
        """
        if type(value) is not str:
            return DROP
        try:
            return self._truncated(value)
        except (OSError, ValueError):
            pass
        address = client_address(value)
        if address is None or address == value:
            return DROP
        try:
            return self._truncated(address)
        except (OSError, ValueError):
            return DROP

    def _truncated(self, value: str) -> str:
        """The truncated address; OSError or ValueError when `value` is not an address."""
        if ":" not in value:
            return inet_ntop(AF_INET, self._v4(inet_pton(AF_INET, value)))
        packed = inet_pton(AF_INET6, value)
        for carrier in _CARRIERS_BY_START.get(packed[:2], ()):
            if packed.startswith(carrier.lead):
                return inet_ntop(AF_INET6, self._carried(carrier, packed))
        return inet_ntop(AF_INET6, self._v6(packed))

    def _carried(self, carrier: Carrier, packed: bytes) -> bytes:
        if carrier.v4_at == (12,):  # the IPv4 is the last 32 bits: the common forms
            return carrier.lead + bytes(12 - len(carrier.lead)) + self._v4(packed[12:])
        out = bytearray(carrier.lead + bytes(16 - len(carrier.lead)))
        for at in carrier.v4_at:
            if at == carrier.inverted_at:
                inverted = bytes(b ^ 0xFF for b in packed[at : at + 4])
                out[at : at + 4] = bytes(b ^ 0xFF for b in self._v4(inverted))
            else:
                out[at : at + 4] = self._v4(packed[at : at + 4])
        return bytes(out)
