"""The value guard's scans over ASCII JSON in C (gateway/_guardscan.c)."""

MARKS: int
REPEATED: int
WRITABLE: int
NO_FORMS: int
IP_UNKNOWN: int

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
        forms_cache: dict[str, tuple[str, ...]],
        written_cache: dict[str, bool],
    ) -> None: ...
    def scan_event(
        self, canonical: bytes, fields: object, /
    ) -> tuple[int, tuple[str, ...]] | None: ...

def output_clean(text: bytes, spellings: tuple[str, ...], marks: bool, /) -> bool | None: ...
def _use_vectors(name: str, /) -> bool: ...
