"""The value guard's scans over ASCII JSON in C (gateway/_guardscan.c)."""

from collections.abc import Callable
from typing import Any

MARKS: int
REPEATED: int
WRITABLE: int

class Scanner:
    def __init__(
        self,
        names: bytes,
        joiners: str,
        alphabet: str,
        pieces: frozenset[str],
        has_risk: bool,
        id_fields: tuple[str, ...],
        ip_field: str,
        forms_cache: dict[str, tuple[str | bytes, ...]],
        written_cache: dict[str, bool],
        forms_of: Callable[[Any, str], tuple[str | bytes, ...]],
        written_of: Callable[[Any, str, tuple[str | bytes, ...]], bool],
        guarded_type: type[tuple[Any, ...]],
        no_hits: object,
        ip_alphabet: str = "",
        native_ipv4: bool = False,
        cache_size: int = 0,
    ) -> None: ...
    def scan_event(self, canonical: bytes, fields: object, guard: object, /) -> Any: ...
    def bind(
        self, guard: object, after_scan: Callable[..., Any], latest: list[Any], /
    ) -> Callable[..., Any]: ...

def output_clean(text: bytes, spellings: tuple[str, ...], marks: bool, /) -> bool | None: ...
def _use_vectors(name: str, /) -> bool: ...
def _ipv4_forms(address: str, /) -> tuple[str | bytes, ...] | None: ...
def _ipv6_forms(address: str, /) -> tuple[str | bytes, ...] | None: ...
def _count_many(text: bytes, needles: tuple[bytes, ...], /) -> tuple[int, ...]: ...
