"""The value guard: no raw identifier value, nor an email address, leaves in an output record.

Source: the contract (CONTRACT.md, "Decisions"): no raw identifier value (ip, device_id,
cookie_id, pixel_id, advertising_id, subject_id, the record key, nor an email address) ever
appears in a sink topic or the audit topic, wherever it sat in the event. The rule holds by
value, not by field name; the operators protect identifiers by field name, this module by value,
once, for every sink and operator:

1. **Before the operators run**, the event's free text (every field except the identifier fields
   themselves, which the operators turn into pseudonyms or network prefixes) is scrubbed. So an
   operator that cuts or rewrites text (url_clean cuts at `?` and `#` and templates path
   segments) can never split an identifier into pieces that survive.
2. **After the operators ran**, each output record (its value and key) is checked again, so an
   operator configured to pass a value through (an IP "truncated" to /32) cannot leak it either.

An occurrence is replaced by a fixed token naming what was there (`[subject_id]`, `[ip]`,
`[email]`, ...), never by a pseudonym: the token is safe for every sink, a child's included.

Matching (`Needle`):
- an identifier value of at least `min_length` characters is found anywhere inside a string,
  in any case (`fold`: Unicode full case folding), also percent-encoded, as an HTML character
  reference or in full-width characters, nested in any order (`_decodings`: the text is decoded,
  then the token that holds it is replaced); a value that is itself such a spelling is also
  looked for decoded (`ValueGuard.needles`);
- a shorter value would match by chance ("u1" inside "menu1"), so it is found only as a whole
  token: not preceded or followed by an ASCII letter or digit;
- numbers are compared by their decimal text; an IPv6 address that embeds an IPv4 address
  (mapped, compatible, NAT64, 6to4) is also searched as that IPv4 address; the IP is read by
  value in any IPv6 spelling (`_ip_spans`), another host's address kept;
- an email address is `local@domain.tld` after the same decoding (an `@` in any spelling), read
  as a mail client reads it (`_EMAIL`);
- text past the guard's bounds (256 decodings, the record's decoding budget) is replaced whole
  by `[undecodable]`: fail closed, in bounded time.
Keys of the top-level object and of `properties` are field and property names chosen by the
config (the allowlist), so they are never rewritten; every other key and every value is.

Cost: the check is a handful of searches over JSON the gateway already has (the input's
canonical encoding, the serialized output). For ASCII JSON without escapes (nearly all traffic)
they run in C, gateway/_guardscan.c: the text lower-cased once, each value one vectorised
search, the whole event one call; this module is their definition, and runs them itself for
any other text (tests/unit/test_guardscan.py shows both answer the same). Only a record with a
possible hit walks its structure (`scrub_fields`, `scrub_output`).
"""

from __future__ import annotations

import html
import html.entities
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from struct import Struct
from types import MappingProxyType
from typing import Any, Final, NamedTuple
from urllib.parse import unquote, unquote_to_bytes

import orjson

from gateway.ipforms import carried_ipv4s, client_address, embedded_ipv4s
from gateway.ipforms import is_address as _is_address
from gateway.operators.base import Synthesis

try:  # the scans in C (gateway/_guardscan.c), built on install; without it the same in Python
    from gateway import _guardscan
except ImportError:  # pragma: no cover - a source tree that was never installed
    _guardscan = None  # type: ignore[assignment, unused-ignore]

__all__ = [
    "EMAIL",
    "EMAIL_TOKEN",
    "GUARDED_IDENTIFIERS",
    "UNDECODABLE",
    "UNDECODABLE_TOKEN",
    "GuardedInput",
    "Needle",
    "Scrub",
    "SynthesisRisk",
    "UndecodableError",
    "ValueGuard",
    "fold",
    "has_at_sign",
    "output_bytes_clean",
    "output_clean",
]

# The identifiers the guard looks for, in the order they are searched (the record key equals
# subject_id: parse_event refuses a record whose key differs).
GUARDED_IDENTIFIERS: Final = (
    "subject_id",
    "device_id",
    "cookie_id",
    "pixel_id",
    "advertising_id",
    "ip",
)  # fmt: skip (the identifier fields of gateway.events, in the order they are searched)
EMAIL: Final = "email"
EMAIL_TOKEN: Final = "[email]"  # noqa: S105 - a marker, not a password
# Text that decodes into more spellings than the guard follows: replaced whole (fail closed).
UNDECODABLE: Final = "undecodable"
UNDECODABLE_TOKEN: Final = "[undecodable]"  # noqa: S105 - a marker, not a password
PROPERTIES: Final = "properties"
# A validated RFC 3339 timestamp is not free text: an identifier that happens to spell part of a
# date or a time ("2026-11-26", "123456" in a fraction) is not looked for in it.
TIMESTAMP_FIELD: Final = "occurred_at"
UNSCRUBBED_FIELDS: Final = (*GUARDED_IDENTIFIERS, TIMESTAMP_FIELD)
_NEEDLE_CACHE_SIZE = 65536
# The most texts one string may decode into (`_decodings`): 17 nestings of two encodings in
# every order stay under it; beyond it the guard fails closed.
_MAX_DECODINGS = 256
# What one record may spend on decoding while it is scrubbed, in characters of decoded text
# plus `_DECODING_COST` a decoding: bounds the time a record can take (~30 ms on the machine
# of docs/benchmarks.md; fail closed past it), far above what real text needs (a 600-byte URL
# with every mark: ~16 decodings, ~11,000).
_DECODING_BUDGET = 500_000
_DECODING_COST = 100
# A search of every needle in a text costs one unit per needle and per this many characters
# (~60 ns a unit, as a decoded character costs): many needles in many strings are bounded too.
_SEARCH_CHARS = 64
# The same for one identifier value's own decodings (`ValueGuard.needles`): a value of more
# spellings than this allows (a long value of nested encodings) is looked for as it is only.
_VALUE_DECODING_BUDGET = 50_000
_ID_FIELDS: Final = GUARDED_IDENTIFIERS[:-1]  # all but the IP, whose spellings are its own
# An email address after decoding, read as a mail client would, not as RFC 5322 allows: the
# local part is any run of characters but white space, URL delimiters (/ ? # & = ;) and `@`
# (so quoted local parts, comments, combining marks and invisible characters are in it, and a
# path segment or a query value is matched, not the whole URL around it); the domain is an
# address literal (`[192.0.2.1]`) or labels joined by a full stop in any spelling (`.`, and
# the ideographic, full-width and halfwidth ones, which IDNA maps to `.`: UTS #46).
_NOT_LOCAL = r"\s/?#&=;@"
_STOPS = ".\u3002\uff0e\uff61"
_LABEL = rf"[^{_NOT_LOCAL}{_STOPS}\[\]]+"
# The last label starts with a letter and has two characters at least, as every top-level
# domain does (`react@18.2.0`, `vue@3.x`, `foo@1.0.0-rc` are package versions, not
# addresses), and an image's pixel density is not a domain (`icon@2x.png`, `logo@1.5x.png`,
# `Default@2x~iphone.png`, `icon@2x-dark.png`); an address literal is at most 255
# characters without delimiters (linear time).
_TOP_LABEL = rf"[^\W\d_][^{_NOT_LOCAL}{_STOPS}\[\]]+"
_LITERAL = rf"\[[^{_NOT_LOCAL}\[\]]{{1,255}}\]"
# An image's pixel density suffix (`icon@2x.png`): a file name, not an address.
_PIXEL_DENSITY = (
    rf"[0-9]{{1,3}}(?:[.][0-9]{{1,2}})?[xX](?:[-~_][^{_NOT_LOCAL}{_STOPS}]{{1,32}})?[.]"
    rf"(?i:png|jpe?g|gif|webp|svg|avif|bmp|ico|tiff?|heic|heif|woff2?|pdf)(?![^{_NOT_LOCAL}])"
)
# A local part starts only after a delimiter (the lookbehind): one attempt per run, linear time.
# (a quoted local part may hold white space, delimiters and escaped quotes, after a dotted
# prefix or not: `"john smith"@example.com`, `john."pat \"p\" smith"@example.com`)
_QUOTED = r'"(?:[^"\\\r\n]|\\.){1,64}"'
_EMAIL_BODY = (
    rf'(?:[^{_NOT_LOCAL}"]*{_QUOTED}|[^{_NOT_LOCAL}]+)@(?!{_PIXEL_DENSITY})'
    rf"(?:{_LITERAL}|[{_STOPS}]*{_LABEL}(?:[{_STOPS}]+{_LABEL})*[{_STOPS}]+{_TOP_LABEL})"
)  # (a stray full stop, `pat@example..com`, `pat@.example.com`, still reads as the address)
_EMAIL = re.compile(rf"(?<![^{_NOT_LOCAL}]){_EMAIL_BODY}")
# ... or right where another address ended inside the run (`a@x.co]b@y.co`, `a@[192.0.2.1]<b@y.co`:
# the domain stops at a bracket or `<`, the run goes on): `_email_subn`.
_EMAIL_HERE = re.compile(_EMAIL_BODY)
# Where an email might hide in a serialized record: `@`, `%40` (also double-encoded), an HTML
# character reference, a full-width or small commercial at (U+FF20, U+FE6B).
# An HTML named character reference (`&period;`), which html.unescape decodes.
# HTML's legacy references also decode without the `;` (`&lt`, `&eacute`: html.unescape, the
# HTML standard's "named character references" table), so they are marks too.
# Matched on text in lower case (`fold`): every name lower-cased, one regex as a trie of them
# (an alternation of ~100 names is tried name by name; a trie is ~3x faster).
_LEGACY_NAMES = {name.lower() for name in html.entities.html5 if not name.endswith(";")}


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of `words` (non-empty), as a trie: common prefixes written once."""
    tree: dict[str, Any] = {}
    for word in words:
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(node[char]) for char in sorted(node) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(tree)


_NAMED_REF = re.compile(r"&(?:[a-z][a-z0-9]{1,31};|" + _trie_pattern(_LEGACY_NAMES) + ")")
# The same names for the C scanner: sorted, joined by NUL.
_LEGACY_NAMES_JOINED = b"\0".join(sorted(name.encode() for name in _LEGACY_NAMES))
# A token for the whole-token fallback: text between URL and text delimiters.
_DELIMITED = re.compile(r"([/?#&=;,|\s]+)")


class Needle(NamedTuple):
    """One identifier value to look for, with its precomputed spellings.

    `identifier` is the class reported (`subject_id`, `ip`, ...); `encoded` are the byte
    spellings searched in serialized JSON (the JSON form, and the percent-encoded form when it
    differs); `whole_token` is true for values shorter than the minimum length.
    """

    identifier: str
    text: str  # the value in lower case: matching ignores case
    encoded: tuple[str, ...]  # its JSON spelling, in lower case
    whole_token: bool
    token: str
    derived: bool  # another spelling, not the field's value: its decoded form, an IP's other forms

    def __repr__(self) -> str:  # never show the value
        return f"Needle(identifier={self.identifier!r}, whole_token={self.whole_token})"

    def occurs_in(self, text: str) -> bool:
        """True when the needle occurs in `text` as the guard matches it (`_spans`).

        A short value only as a whole token; an IP spelling not inside another address.
        """
        if self.text not in fold(text):
            return False
        address = self.identifier == "ip"
        if address and self.text.count(":") > 1:
            return bool(_ip_spans(fold(text), (self.text,)))
        return bool(_spans(text, self.text, whole_token=self.whole_token, address=address))


class GuardedInput(NamedTuple):
    """One event as the guard hands it to the sinks' operators.

    `fields` are the event's fields with the free text scrubbed (the event's own dict when
    nothing was found); `spellings` the identifier values as they appear in orjson's output,
    which every output is checked for; `hits` the occurrences replaced per field (`page`,
    `properties.<name>`) and identifier. `needles()` gives the full needles (slow path only).
    When `marks_free`, an output can hold an at-sign only if the sink's own config text put it
    there (`output_clean`'s `marks` argument). When `proven`, no output of a sink whose
    operators all declare what they write can hold an identifier value either (`SynthesisRisk`):
    such outputs need no check.
    """

    fields: Mapping[str, Any]
    spellings: tuple[str, ...]
    hits: Mapping[str, Counter[str]]
    source: Mapping[str, Any]
    guard: ValueGuard
    marks_free: bool  # the input holds no at-sign in any spelling and no encoding mark
    proven: bool  # values only in their own fields, none that an operator could write

    def needles(self) -> tuple[Needle, ...]:
        """The event's needles, longest value first (built on demand: a slow path)."""
        return self.guard.needles(self.source)

    def received(self, output: Mapping[str, Any]) -> tuple[Scrub, ...]:
        """The input occurrences replaced in the fields that this output holds."""
        scrubs = []
        properties = output.get(PROPERTIES)
        for field, counts in self.hits.items():
            _, dot, prop = field.partition(".")
            held = prop in properties if dot and type(properties) is dict else field in output
            if held:
                scrubs += [Scrub(field, identifier, n) for identifier, n in counts.items()]
        return tuple(scrubs)

    def __repr__(self) -> str:
        return f"GuardedInput(values={len(self.spellings)}, fields_hit={len(self.hits)})"


class Scrub(NamedTuple):
    """What the guard replaced in one record: where, what, and how many times.

    Where is a field name or `properties.<name>`.
    """

    field: str
    identifier: str
    occurrences: int


_dumps = orjson.dumps
_new_tuple = tuple.__new__
_NO_HITS: Mapping[str, Counter[str]] = MappingProxyType({})


_MARK_CATEGORIES: Final = frozenset({"Mn", "Me"})  # nonspacing and enclosing marks
_FOLD_TABLE_SIZE = 65536
# Default-ignorable code points (Unicode's DerivedCoreProperties.txt) outside the format
# characters (category Cf: soft hyphen, zero-width space and joiners, bidi marks, tags): the
# combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian free variation
# selectors, variation selectors, and the unassigned code points reserved as default-ignorable
# (U+2065, U+FFF0-FFF8, U+E0000-E0FFF). Rendered as nothing, so `fold` drops them.
_OTHER_IGNORABLES: Final = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u2065\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xFFF0, 0xFFF9)))  # unassigned, reserved as default-ignorable
    + "".join(map(chr, range(0xE0000, 0xE1000)))  # tags, variation selectors, reserved
)


class _FoldTable(dict[int, str]):
    """`fold` of one character, by code point, computed on first use (for `str.translate`)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if unicodedata.category(char) == "Cf" or char in _OTHER_IGNORABLES:
            self[code] = ""  # invisible: a reader sees the text without it
            return ""
        folded = unicodedata.normalize("NFD", unicodedata.normalize("NFD", char).casefold())
        folded = folded.replace("\u0131", "i")
        # combining marks dropped: a value with marks drawn over it reads as the value
        folded = "".join(c for c in folded if unicodedata.category(c) not in _MARK_CATEGORIES)
        if len(self) >= _FOLD_TABLE_SIZE:  # bounded: text can hold any of 1.1M code points
            self.clear()
        self[code] = folded
        return folded


_FOLD_TABLE: Final = _FoldTable()


class _InvisibleTable(dict[int, int | None]):
    """None for an invisible code point, the code point otherwise (for `str.translate`)."""

    def __missing__(self, code: int) -> int | None:
        kept = None if _FOLD_TABLE[code] == "" and chr(code).strip() else code
        if len(self) >= _FOLD_TABLE_SIZE:
            self.clear()
        self[code] = kept
        return kept


_INVISIBLE_TABLE: Final = _InvisibleTable()
# Joins an event's values for one search over all: JSON text without a backslash holds no NUL.
_SEPARATOR: Final = "\0"
if _guardscan is not None:
    _MARKS = _guardscan.MARKS
    _output_clean = _guardscan.output_clean
else:  # pragma: no cover - a source tree that was never installed
    _MARKS = 1
    _output_clean = None


def fold(text: str) -> str:
    """`text` as the guard compares it: case-folded and decomposed (one value, any case).

    So a value matches in any case, any canonically equivalent spelling, and with any marks
    drawn over it. Each character is decomposed (NFD), case-folded (`str.casefold`: Unicode's
    full case folding, CaseFolding.txt C+F: `ß` and `ẞ` as `ss`, a final sigma as sigma) and
    decomposed again; then the dotless `ı` folds to `i`, combining marks (Unicode categories
    Mn and Me: accents, the dot above, enclosing circles) are dropped, so `İ`, `I` + U+0307 and
    `i` compare equal, `é` and `e` too, and a value with a mark over each character
    (`1\u0301 9\u0301 2.0.2.77` without the spaces) reads as the value; and invisible characters
    (default-ignorable code points: soft hyphen, zero-width space, variation selectors) are
    dropped. `İSTANBUL` and `İstanbul`, `ΰ` and `Ϋ́` compare equal. Character by character (no
    context), so folding a text is folding its characters one by one (`_spans` relies on it);
    ASCII text folds as `str.lower` does.
    """
    return text.lower() if text.isascii() else _fold_other(text)


@lru_cache(maxsize=64)
def _fold_other(text: str) -> str:
    """`fold` of text that is not ASCII, remembered (a few texts).

    The close look folds one text again and again (each decoding, each needle's match), and a
    table-driven translation of 60 KB takes ~1.5 ms.
    """
    return text.translate(_FOLD_TABLE)


def _json_text(text: str) -> str:
    """`text` as it appears inside a JSON string written by orjson (without the quotes).

    Text with a lone surrogate (a decoding of invalid UTF-8 bytes, `_percent_decoded`), which
    orjson refuses and no output can hold, is written with the surrogate as an escape.
    """
    try:
        return _dumps(text)[1:-1].decode()
    except TypeError:
        return _json_text(text.encode("utf-8", "backslashreplace").decode())


def _token_for(identifier: str, text: str) -> str:
    """The replacement token: names the identifier, unless the value itself is inside it."""
    for token in (f"[{identifier}]", "[id]", "[]"):
        if text not in token:
            return token
    return ""


def _make_needle(identifier: str, text: str, min_length: int, *, derived: bool) -> Needle:
    low = fold(text)
    # Only the JSON spelling: a percent-encoded one needs a `%`, which sends the whole record
    # down the decoding path anyway.
    spelling = _json_text(low)
    token = _token_for(identifier, low)
    return Needle(identifier, low, (spelling,), len(text) < min_length, token, derived)


def _spans(
    text: str, needle: str, *, whole_token: bool, address: bool = False
) -> list[tuple[int, int]]:
    """Where `needle` (folded) occurs in `text`, in any case: (start, end) indices of `text`.

    Matching is on `fold(text)`. When folding changes a character's length (`ß` folds to two,
    `ss`; `é` to one, `e`; a combining mark to none), each folded character
    is mapped back to the character it came from, and a match covers the whole characters it
    touches. A `whole_token` match is not preceded or followed by an ASCII letter or digit; an
    `address` needle (a spelling of the IP) matches only outside a longer address
    (`_in_address`), and not at all when it is a whole IPv6 address: those are read by value
    (`_ip_spans`).
    Spans do not overlap.
    """
    if not needle or (address and needle.count(":") > 1):
        return []  # (an IPv6 address is read by value, `_ip_spans`, not as a piece of text)
    low = fold(text)
    at = low.find(needle)
    if at < 0:
        return []
    # None: folding kept every character's length (ASCII); else where each folded one came from
    origin = None if text.isascii() else _origin(text)
    spans: list[tuple[int, int]] = []
    width = len(needle)
    if whole_token:  # the next match that is a whole token, found by the regex engine
        found = _whole_token(needle).search(low, at)
        at = found.start() if found else -1
    while at >= 0:
        end = at + width
        if address and _in_address(low, at, end):
            at = low.find(needle, at + 1)
            continue
        start, stop = (at, end) if origin is None else (origin[at], origin[end - 1] + 1)
        if spans and start < spans[-1][1]:  # shares a character with the previous match
            spans[-1] = (spans[-1][0], stop)
        else:
            spans.append((start, stop))
        if whole_token:
            found = _whole_token(needle).search(low, end)
            at = found.start() if found else -1
        else:
            at = low.find(needle, end)
    return spans


@lru_cache(maxsize=1024)
def _whole_token(needle: str) -> re.Pattern[str]:
    """`needle` not preceded or followed by an ASCII letter or digit (a whole token)."""
    return re.compile(rf"(?<![a-zA-Z0-9]){re.escape(needle)}(?![a-zA-Z0-9])")


def _in_address(low: str, at: int, end: int) -> bool:
    """True when `low[at:end]`, a spelling of an IP address, is part of a longer number or address.

    A dotted IPv4 address written against a digit, or against a dot next to a digit
    (`10.0.0.1` in `10.0.0.12`, `110.0.0.1` or `10.0.0.1.5`); an IPv4 address's two hex groups
    (`c000:24d`) written against a hex digit, or followed by a colon or a dot (`c000:24d0`,
    `2001:db8:c000:24d::1`): another host's address, kept. (Spellings of a whole IPv6 address
    are read by value instead: `_ip_spans`.) The address as one number (`_number_form`):
    written against a digit of its kind (a hex digit, for a form with a hex letter), another
    number, kept; after `0x` and any zeros (`0x0c000024d`, as `inet_aton` reads it), the
    address.
    """
    hexed = ":" in low[at:end]
    if not hexed and "." not in low[at:end]:  # the address as one number
        kind = _DIGITS if low[at:end].isdigit() else _HEX_DIGITS
        start = at
        while start > 0 and low[start - 1] == "0":
            start -= 1
        if start > 1 and low[start - 1] == "x" and low[start - 2] == "0":
            at = start - 2  # `0x` and zeros: the number's own prefix
            before = low[at - 1] if at > 0 else ""
            return before in _HEX_DIGITS or (end < len(low) and low[end] in _HEX_DIGITS)
        return (at > 0 and low[at - 1] in kind) or (end < len(low) and low[end] in kind)
    kind = _HEX_DIGITS if hexed else _DIGITS
    if at > 0:
        before = low[at - 1]
        if before in kind or (before == "." and at > 1 and low[at - 2] in _DIGITS):
            return True
    if end < len(low):
        after = low[end]
        if after in kind or (hexed and after in ":."):
            return True
        if after == "." and end + 1 < len(low) and low[end + 1] in _DIGITS:
            return True
    return False


_DIGITS: Final = "0123456789"
_HEX_DIGITS: Final = "0123456789abcdef"
_HEX_DIGIT_SET: Final = frozenset(_HEX_DIGITS)


@lru_cache(maxsize=8)
def _origin(text: str) -> list[int]:
    """For each character of `fold(text)`, the index of the character of `text` it came from."""
    table = _FOLD_TABLE
    origin: list[int] = []
    for index, char in enumerate(text):
        if char < "\x80":
            origin.append(index)
        else:
            origin += [index] * len(table[ord(char)])
    return origin


def _replace(text: str, needle: Needle) -> tuple[str, int]:
    """`text` with every occurrence of the needle, in any case, replaced by its token."""
    spans = _spans(
        text, needle.text, whole_token=needle.whole_token, address=needle.identifier == "ip"
    )
    return _cut(text, spans, needle.token), len(spans)


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`spans` sorted, those that overlap or touch joined into one."""
    joined: list[tuple[int, int]] = []
    for at, end in sorted(spans):
        if joined and at <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((at, end))
    return joined


def _cut(text: str, spans: list[tuple[int, int]], token: str) -> str:
    """`text` with each of `spans` (sorted, not overlapping) replaced by `token`."""
    if not spans:
        return text
    parts: list[str] = []
    start = 0
    for at, end in spans:
        parts += (text[start:at], token)
        start = end
    return "".join(parts) + text[start:]


# A run of characters an IPv6 address is written with; `_ip_spans` reads the addresses in it.
_IP_RUN = re.compile(r"[0-9A-Fa-f:.]{2,}")
_IPV6_TEXT_MAX = 45  # characters: the longest IPv6 text (RFC 4291 with a dotted IPv4 tail)
_PARSE_COST = 100  # of the record's decoding budget: a parse and its checks (~5 µs)
_IP_ATTEMPTS = 4096  # parses per text at most; past it the text is undecodable (fail closed)


@lru_cache(maxsize=4096)
def _ip_identity(
    addresses: tuple[str, ...],
) -> tuple[frozenset[bytes], frozenset[str], tuple[str, ...]]:
    """What `_ip_spans` compares with: the addresses' bytes, IPv4s and the pieces to look for.

    For each address the texts hold (`ip_addresses` of each: the `ip` field folded, and the
    readings of it as received, which differ when it holds a character `fold` drops): an IPv6
    address's 16 bytes, the IPv4 addresses it is or carries; and pieces one of which every IPv6
    spelling of each holds (its anchors and dotted IPv4s, or () when an anchor is missing, a
    zero group: every run is read then).
    """
    packed: set[bytes] = set()
    ipv4s: set[str] = set()
    pieces: list[str] = []
    sure = True
    held = dict.fromkeys(one for text in addresses for one in ip_addresses(text))
    for one in held:
        anchors = _address_anchors(one)
        own: tuple[str, ...]
        if ":" not in one:
            own = (one,)
            whole = 3  # its upper group as is and inverted, and the NAT64 prefix's
        else:
            packed.add(inet_pton(AF_INET6, one))  # (an address: `ip_addresses`)
            own = embedded_ipv4s(one)
            whole = 1 + 2 * len(own) + bool(own)
        ipv4s.update(own)
        sure &= b":" not in anchors and len(anchors) >= whole  # a zero group: none is sure
        inverted = [
            inet_ntop(AF_INET, bytes(b ^ 0xFF for b in inet_pton(AF_INET, v4))) for v4 in own
        ]
        pieces += (*(a.decode() for a in anchors), *own, *inverted)  # (Teredo's dotted client)
    return frozenset(packed), frozenset(ipv4s), tuple(dict.fromkeys(pieces)) if sure else ()


def _ip_spans(
    text: str, addresses: tuple[str, ...], budget: list[int] | None = None
) -> list[tuple[int, int]]:
    """Where `text` writes the IP as an IPv6 address in any spelling, by value.

    `addresses`: the texts of the IP's needles (`_ip_texts`), or one needle's text; every
    address they hold counts.

    Every run of hex digits, colons and dots with two colons or more is read: each piece of it
    that starts at a group's edge (or inside the first group, for hex letters written against
    it) is read as the longest IPv6 address written from there (`inet_pton`), which is a match
    when it is the address (leading zeros, any `::` compression, upper case, a dotted IPv4 tail)
    or carries the IPv4 address it is or carries (`embedded_ipv4s`); a longer, other address
    (`2001:db8::42:1` for `2001:db8::42`) is not. (start, end) indices, not overlapping.
    Raises `UndecodableError` past `_IP_ATTEMPTS` parses, or past what is left of the record's
    `budget` (`_Hits.budget`; `_PARSE_COST` a parse).
    """
    packed, ipv4s, pieces = _ip_identity(addresses)
    if not packed and not ipv4s:
        return []
    spans: list[tuple[int, int]] = []
    attempts = 0
    for run in _IP_RUN.finditer(text):
        piece = run.group()
        if piece.count(":") < 2:
            continue
        if pieces:  # a run holding none of them writes no spelling of the address
            low = piece.lower()
            if not any(key in low for key in pieces):
                continue
        edges = [i for i, char in enumerate(piece) if char in ":."]
        first, last = edges[0], edges[-1]
        starts = sorted({0, *range(max(0, first - 4), first), *(i + 1 for i in edges)})
        ends = sorted({len(piece), *range(last + 1, min(len(piece), last + 5) + 1), *edges})
        covered = 0
        for start in starts:
            if start < covered:
                continue
            window = ends[bisect_left(ends, start + 2) : bisect_right(ends, start + _IPV6_TEXT_MAX)]
            for end in reversed(window):  # the longest address written from here counts
                candidate = piece[start:end]
                if candidate.count(":") < 2:
                    continue
                attempts += 1
                if attempts > _IP_ATTEMPTS:
                    raise UndecodableError
                _charge(budget, _PARSE_COST)
                try:
                    found = inet_pton(AF_INET6, candidate)
                except (OSError, ValueError):
                    continue
                if found in packed or not ipv4s.isdisjoint(embedded_ipv4s(candidate)):
                    spans.append((run.start() + start, run.start() + end))
                    covered = end
                break  # another address (`2001:db8::42:1` is not `2001:db8::42`)
    return spans


# A number or dotted numbers as `inet_aton` reads an IPv4 address: 1-4 parts, each decimal,
# octal (a leading 0) or hex (0x), not inside a longer run of letters, digits and dots.
_ATON_RUN = re.compile(
    r"(?<![0-9a-z.])(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}(?!\.?[0-9a-z])"
)
_ATON_PARTS = 4


def _part_readings(part: str) -> tuple[int, ...]:
    """What one part of a dotted IPv4 text is read as (one or two numbers).

    Hex after `0x`; with a leading zero, octal (as `inet_aton`) and decimal (as a person, or a
    lenient parser, reads `077`); else decimal.
    """
    if part.startswith("0x"):
        return (int(part[2:] or "0", 16),)
    if len(part) > 1 and part[0] == "0":
        decimal = int(part)
        return (int(part, 8), decimal) if not part.strip("01234567") else (decimal,)
    return (int(part),)


def _significant(part: str) -> str:
    """A part's digits without `0x` and leading zeros (`inet_aton` reads any number of them)."""
    return (part[2:] if part.startswith("0x") else part).lstrip("0")


def _aton_spans(text: str, targets: frozenset[int]) -> list[tuple[int, int]]:
    """Where `text` (folded) writes one of `targets` in a form no needle holds.

    `targets` are IPv4 addresses as 32-bit numbers; the forms, as `inet_aton` or browsers read
    them, or a person: octal `030000001115`, shortened
    `192.0.589` and `192.589`, dotted octal or hex parts `0300.0.2.0115`, `0xc0.0.2.0x4d`, and
    zero-padded `192.000.002.077` (read as decimal too). The plain forms (four decimal parts
    without a leading zero, or one decimal number) are the needles' (`ip_spellings`), and the
    IP's own field is one of them; a plain shortened form whose last part fits a byte (`10.1`
    for 10.0.0.1) is not read (versions and prices). Any number of leading zeros; at most 12
    significant digits a part. (start, end) indices, not overlapping.
    """
    spans: list[tuple[int, int]] = []
    if not targets:
        return spans
    for run in _ATON_RUN.finditer(text):
        parts = run.group().split(".")
        plain = all(p[0] != "0" or p == "0" for p in parts)
        if plain and len(parts) in (1, _ATON_PARTS):
            continue
        # a plain shortened form whose last part fits a byte (`10.1`, `5.8.0`) is read as a
        # version or a price far more often than as an address: only `192.0.589` counts
        if plain and int(parts[-1]) < 256:
            continue
        if any(len(_significant(p)) > 12 for p in parts):  # (no IPv4 part is that long)
            continue
        last_bits = 8 * (_ATON_PARTS + 1 - len(parts))
        readings = [0]
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            limit = (1 << last_bits) if last else 256
            shift = 0 if last else 8 * (3 - index)
            readings = [
                r + (v << shift) for r in readings for v in _part_readings(part) if v < limit
            ]
        if targets.intersection(readings):
            spans.append(run.span())
    return spans


def _aton_targets(needles: tuple[Needle, ...]) -> frozenset[int]:
    """The IPv4 addresses the event's IP is or carries, as numbers (`_aton_spans`).

    `needles` hold the IP's (`_ip_needle` is not None).
    """
    return _ipv4_numbers(_ip_texts(needles))


def _forms_elsewhere(text: str, low: str, ip: str, forms: tuple[str | bytes, ...]) -> bool:
    """Whether `text` (folded) holds the IP's other spellings or anchors (`forms`) elsewhere.

    More often than its own field (`low`: `ip` folded) does, or the IP in a form no needle
    holds (`_aton_elsewhere`).
    """
    for form in forms:  # other spellings (and the anchor): only in the IP's own
        piece = form.decode() if isinstance(form, bytes) else form
        if piece in text and text.count(piece) != low.count(piece):
            return True
    return _aton_elsewhere(text, low, ip)


def _aton_elsewhere(text: str, low: str, ip: str) -> bool:
    """Whether `text` (folded) writes the `ip` field's IP in a form no needle holds.

    `low` is the field folded; the forms are those `inet_aton` or a person reads
    (`192.0.589`, octal: `_aton_spans`).
    """
    return bool(_aton_spans(text, _ipv4_numbers(tuple(dict.fromkeys((low, ip))))))


@lru_cache(maxsize=4096)
def _ipv4_numbers(addresses: tuple[str, ...]) -> frozenset[int]:
    """The IPv4 addresses the texts of the IP are or carry (`_ip_identity`), as numbers."""
    ipv4s = _ip_identity(addresses)[1]
    return frozenset(int.from_bytes(inet_pton(AF_INET, v4), "big") for v4 in ipv4s)


def _ip_texts(needles: tuple[Needle, ...]) -> tuple[str, ...]:
    """The texts of the IP's needles: its value folded, then its other spellings and readings.

    Each address any of them holds is the IP's (found by the nineteenth attack round: an `ip`
    text with a character `fold` drops, `2001:db8:1::1\u00ad:5`, reads as another address
    folded than as received; both are the subject's).
    """
    return tuple(needle.text for needle in needles if needle.identifier == "ip")


def _ip_needle(needles: tuple[Needle, ...]) -> Needle | None:
    """The needle of the event's own IP address (not one of its other spellings), if any."""
    for needle in needles:
        if needle.identifier == "ip" and not needle.derived:
            return needle
    return None


def ip_spellings(address: str) -> tuple[str, ...]:
    """Other spellings of an IP address, in lower case; () for text that holds no address.

    An IPv6 address compressed and written out in full, and every IPv4 address it carries
    (gateway.ipforms); an IPv4 address as the two hex groups of its IPv4-mapped form
    (`192.0.2.77` -> `c000:24d`). An `ip` field that is not one address but holds some
    (`ip_addresses`: a forwarded-for list, a port, brackets, a zone, white space): each of
    them and its spellings.
    """
    if _is_address(address):
        return _address_spellings(address)
    low = address.lower()
    held = (form for one in ip_addresses(address) for form in (one.lower(), *ip_spellings(one)))
    return tuple(dict.fromkeys(form for form in held if form != low))


def _address_spellings(address: str) -> tuple[str, ...]:
    """`ip_spellings` of text that is one address; () for any other text.

    Also () for an address written as its only spelling
    (`2a02:8108:1c4d:7f00:9abc:def0:1234:5678`): `_is_address` tells them apart.
    """
    try:
        if ":" not in address:
            return _ipv4_spellings(inet_pton(AF_INET, address))
        packed = inet_pton(AF_INET6, address)
    except (OSError, ValueError):
        return ()
    forms = [inet_ntop(AF_INET6, packed), packed.hex(":", 2)]
    for ipv4 in carried_ipv4s(packed):
        forms += (ipv4, *_ipv4_spellings(inet_pton(AF_INET, ipv4)))
    low = address.lower()
    return tuple(dict.fromkeys(form for form in forms if form != low))


_FIELD_ADDRESSES = 16  # at most, read from one `ip` field; more: the record fails closed
_FIELD_PARSES = 1024  # parses at most, reading one `ip` field; more: likewise


def ip_addresses(text: str) -> tuple[str, ...]:
    """The IP addresses an `ip` field holds: (text,) when it is one, else those written in it.

    Collectors send more than a bare address: an X-Forwarded-For list (`203.0.113.9,
    10.0.0.1`), a port (`192.0.2.77:443`, `[2001:db8::1]:443`), a zone (`fe80::1%eth0`), a
    prefix length, white space, a tag (`IPv6:2001:db8::42`). Each address in it is the
    subject's as much as a bare one. Read as `_ip_spans` reads text: in every run of hex
    digits, colons and dots, from its start and after each colon or dot, the longest address
    written from there (`inet_pton` decides; `6:2001:db8::42` holds `2001:db8::42` too); in the
    text as received and, when they differ, folded (an invisible character splits an address in
    one reading only). At most `_FIELD_ADDRESSES` (`ip_addresses_complete` tells whether that
    was all).
    """
    return _field_addresses(text)[0]


def ip_addresses_complete(text: str) -> bool:
    """False when an `ip` field holds more addresses than the guard reads.

    More than `_FIELD_ADDRESSES`, or more than `_FIELD_PARSES` parses: its record then fails
    closed.
    """
    return _field_addresses(text)[1]


@lru_cache(maxsize=1024)
def _field_addresses(text: str) -> tuple[tuple[str, ...], bool]:
    if _is_address(text):
        return (text,), True
    found: dict[str, None] = {}
    client = client_address(text)  # the address `ip_truncate` truncates: always read, first
    if client is not None and _is_address(client):
        found[client] = None
    parses = 0
    # read as received and folded: an invisible character `fold` drops splits an address in
    # one reading and not in the other (`192.0\u00ad.2.77`); both are the subject's
    folded = fold(text)
    readings = (text,) if folded == text.lower() else (text, folded)
    runs = (run for reading in readings for run in _IP_RUN.finditer(reading))
    for run in runs:
        piece = run.group()
        edges = [i for i, char in enumerate(piece) if char in ":."]
        ends = [*edges, len(piece)]  # (tried from the longest)
        for start in (0, *(i + 1 for i in edges)):
            for end in reversed(ends):
                if end - start < 7 and ":" not in piece[start:end]:
                    break  # (too short for an IPv4 address, and no IPv6 one)
                parses += 1
                if parses > _FIELD_PARSES:
                    return tuple(found), False
                candidate = piece[start:end]
                if _is_address(candidate):
                    found[candidate] = None
                    break
        # and a dotted IPv4 address with hex letters against it (`192.0.2.77abc`)
        for quad in _DOTTED_QUAD.finditer(piece):
            parses += 1
            if _is_address(quad.group()):
                found[quad.group()] = None
        if len(found) > _FIELD_ADDRESSES or parses > _FIELD_PARSES:
            return tuple(found)[:_FIELD_ADDRESSES], False
    return tuple(found), True


_DOTTED_QUAD = re.compile(r"(?<![0-9])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9])")


class UndecodableError(Exception):
    """Text whose decodings go past the guard's bounds (`_MAX_DECODINGS`, `_DECODING_BUDGET`)."""


def _percent_decoded(text: str) -> str:
    """One round of percent-decoding, at the byte level.

    A byte that is not part of valid UTF-8 is kept as a lone surrogate (`surrogateescape`) and
    turned back into the byte in the next round, so an escape sequence split by another
    encoding (`%C5&#37;BF`: `&#37;` is `%`) completes once that is undone, as a reader decoding
    in another order would see it. Text holding other lone surrogates is decoded as `unquote`
    does.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return unquote(text)
    return unquote_to_bytes(raw).decode("utf-8", "surrogateescape")


# A byte that percent-decoding could not read as UTF-8, kept as a lone surrogate
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _bytes_as_cp1252(text: str) -> str:
    """Undecoded bytes read as Windows-1252 (Latin-1's superset): `Jos%E9` is `José`.

    As legacy pages and readers such as Java's URLDecoder with a Latin-1 charset read them.
    """
    return _ESCAPED_BYTE.sub(
        lambda m: bytes((ord(m.group()) - 0xDC00,)).decode("cp1252", "replace"), text
    )


def _escaped_again(text: str) -> str:
    """`text` with each undecoded byte (a lone surrogate) written back as its `%XX` escape."""
    return _ESCAPED_BYTE.sub(lambda m: f"%{ord(m.group()) - 0xDC00:02X}", text)


def _visible(text: str) -> str:
    """`text` without its invisible characters (those `fold` drops: `_FoldTable`)."""
    return text.translate(_INVISIBLE_TABLE)


def _plus_as_space(text: str) -> str:
    return text.replace("+", " ")  # HTML form encoding (application/x-www-form-urlencoded)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


# Full stops that URL and IDNA parsers read as `.` (UTS #46 maps them; U+FF0E is NFKC's too):
# `http://192。0。2。77/` is host 192.0.2.77 to a browser.
_IDEOGRAPHIC_STOPS: Final = "\u3002\uff61"
_AS_FULL_STOPS: Final = str.maketrans(dict.fromkeys(_IDEOGRAPHIC_STOPS, "."))


def _full_stops(text: str) -> str:
    return text.translate(_AS_FULL_STOPS)


def _has_ideographic_stop(text: str) -> bool:
    return "\u3002" in text or "\uff61" in text


def _decodings(text: str, budget: list[int] | None = None) -> list[str]:
    """`text` and every text a reader could decode it into, `text` first.

    The decodings: percent-encoding (`_percent_decoded`), HTML character references, NFKC
    (compatibility characters: full-width letters, digits and `@`, small and circled forms),
    invisible characters dropped (`_visible`: a reader does not see them), the ideographic full
    stops as `.` (`_full_stops`: URL and IDNA parsers read them so) and `+` as a space
    (form encoding), each applied where it changes something, in every order,
    again and again until no new text appears: any nesting in any order (`%26amp%3B` -> `&amp;`
    -> `&`; a full-width `％４１` -> `%41` -> `A`; `%C5&#37;BF` -> `ſ`). Raises `UndecodableError`
    past `_MAX_DECODINGS` texts, or when their characters exceed what is left of `budget` (a
    one-item list, decremented: the record's bound, `_Hits.budget`); the guard then fails
    closed.
    """
    found = {text: None}
    frontier = [text]
    while frontier:
        following = []
        for current in frontier:
            steps: list[Callable[[str], str]] = []
            if "%" in current:
                steps.append(_percent_decoded)
            if "&" in current:
                steps.append(html.unescape)
            if not current.isascii():
                steps += (_nfkc, _visible)
                if _has_ideographic_stop(current):
                    steps.append(_full_stops)
            if "+" in current:
                steps.append(_plus_as_space)
            if not current.isascii() and _ESCAPED_BYTE.search(current):
                steps.append(_bytes_as_cp1252)
            for step in steps:
                decoded = step(current)
                if decoded not in found:
                    if len(found) >= _MAX_DECODINGS:
                        raise UndecodableError
                    _charge(budget, len(decoded) + _DECODING_COST)
                    found[decoded] = None
                    following.append(decoded)
        frontier = following
    return list(found)


def ip_anchors(address: str) -> tuple[bytes, ...]:
    """Pieces that the address's IPv6 spellings hold, each with its colon; () for no address.

    (For an `ip` field holding addresses among other text, `ip_addresses`: each one's.)

    Any IPv6 spelling of an address, padded or compressed, holds each of its first six groups
    (never written dotted) in hex without leading zeros, followed by a colon: the longest
    nonzero one is its anchor (`1234:` of `2001:db8:1234:5678::42`). Every IPv6 form that
    carries an IPv4 address the address is or carries (mapped, NAT64, 6to4, Teredo's server)
    holds the IPv4's upper 16 bits so (`c000:` of `192.0.2.77`), and Teredo holds its client
    inverted (`3fff:`): anchors too. Where such a group is zero (`::1`, `255.255.1.2`
    inverted), a lone colon stands for it: any colon elsewhere. An address that is or carries
    an IPv4 one also has `ff9b:` (`_NAT64_ANCHOR`). The fast path looks closely
    when the text holds an anchor elsewhere than in the address itself (`ValueGuard.prepare`);
    the close look then reads the text by value (`_ip_spans`).
    """
    anchors = _address_anchors(address)
    if anchors or not address:
        return anchors
    held = [anchor for one in ip_addresses(address) for anchor in _address_anchors(one)]
    if not ip_addresses_complete(address):
        held.append(b":")  # more than the guard reads: every event is looked at closely
    return tuple(dict.fromkeys(held))


def _address_anchors(address: str) -> tuple[bytes, ...]:
    """`ip_anchors` of text that is one address; () for any other text."""
    if ":" not in address:  # an IPv4 address (the common case, kept short)
        try:
            upper = _upper(inet_pton(AF_INET, address))
        except (OSError, ValueError):
            return ()
        if upper in (0, 0xFFFF):  # as is or inverted, a zero group
            return (b"ffff:", b":", _NAT64_ANCHOR)
        return (b"%x:" % upper, b"%x:" % (upper ^ 0xFFFF), _NAT64_ANCHOR)
    try:
        packed = inet_pton(AF_INET6, address)
    except (OSError, ValueError):
        return ()
    host = width = 0  # the longest group in hex, the last of those (a zero one is not written)
    for group in _SIX_GROUPS(packed):
        if group and group.bit_length() + 3 >> 2 >= width:
            host, width = group, group.bit_length() + 3 >> 2
    zero = not host
    groups = [host] if host else []
    for ipv4 in carried_ipv4s(packed):  # (as is, and inverted: Teredo's client)
        upper = _upper(inet_pton(AF_INET, ipv4))
        zero |= upper in (0, 0xFFFF)
        groups += (upper, upper ^ 0xFFFF)
    anchors = [b"%x:" % group for group in groups if group]
    if zero:
        anchors.append(b":")  # a zero group has no anchor: any colon elsewhere is looked at
    if len(groups) > 1:  # it carries an IPv4 address
        anchors.append(_NAT64_ANCHOR)
    return tuple(dict.fromkeys(anchors))


# The NAT64 prefixes' second group, in every spelling of an address under them: where the
# local-use prefix places an IPv4 across the reserved octet (`gateway.ipforms.LOCAL_USE`), its
# upper group is not written whole, so this is the anchor of every IPv4 address too.
_NAT64_ANCHOR: Final = b"ff9b:"


_SIX_GROUPS = Struct("!6H").unpack_from  # an IPv6 address's first six groups, as numbers


def _upper(ipv4: bytes) -> int:
    """The upper 16 bits of a packed IPv4 address."""
    return ipv4[0] << 8 | ipv4[1]


def _ipv4_spellings(ipv4: bytes) -> tuple[str, ...]:
    """A packed IPv4 address as IPv6 forms write it, beside its dotted self.

    Its two hex groups (`c000:24d`, compressed `c000::` when the lower one is zero, as 6to4's
    `2002:c000::` holds 192.0.0.0, and `::200` when the upper one is), and the same of it
    inverted, hex and dotted, as Teredo writes its client (`3fff:fdb2`, `63.255.253.178` for
    192.0.2.77). Then, for an address whose first byte is not zero (every public one), the
    address as one number, in decimal, in hex zero-padded to 8 digits and not, and in octal
    (without its leading zero): forms that `inet_aton` and browsers read as the address
    (`http://3221226061/`, `0xc000024d`, `030000001115`), at least 7 characters long.
    """
    inverted = bytes(byte ^ 0xFF for byte in ipv4)
    forms = [_ipv4_hex(ipv4), _ipv4_hex(inverted), inet_ntop(AF_INET, inverted)]
    forms += [f"{_upper(v4):x}::" for v4 in (ipv4, inverted) if v4[2:] == b"\0\0"]
    forms += [f"::{_upper(v4[2:]):x}" for v4 in (ipv4, inverted) if v4[:2] == b"\0\0"]
    if ipv4[0]:
        number = int.from_bytes(ipv4, "big")
        forms += [str(number), f"{number:08x}", f"{number:x}", f"{number:o}"]
    return tuple(dict.fromkeys(forms))


def _number_form(spelling: str) -> bool:
    """Whether a spelling of an IP address is the address as one number: hex digits only."""
    return bool(spelling) and _HEX_DIGIT_SET.issuperset(spelling)


def _ipv4_hex(ipv4: bytes) -> str:
    """A packed IPv4 address as the two hex groups of its IPv4-mapped form (`c000:24d`)."""
    return f"{ipv4[0] << 8 | ipv4[1]:x}:{ipv4[2] << 8 | ipv4[3]:x}"


def _may_be_encoded(text: str) -> bool:
    return "%" in text or "&" in text or "+" in text or not text.isascii()


def _padded(value: str) -> bool:
    """True when a value starts or ends with white space (`str.strip`'s: Unicode's)."""
    return value[:1].isspace() or value[-1:].isspace()


def _spaced(values: Iterable[str]) -> bool:
    """True when a value holds a space or a `+` (form encoding writes a space as `+`).

    Text holding a `+` is then looked at closely: a value may sit in it with some spaces
    written as `+` (`_plus_as_space`).
    """
    return any(" " in value or "+" in value for value in values)


def _decodes(value: str) -> bool:
    """True when decoding changes the value as the guard compares it (`_decodings`, `fold`)."""
    if not _may_be_encoded(value):
        return False
    folded = fold(value)
    try:
        decodings = _decodings(value, [_VALUE_DECODING_BUDGET])  # the bound `_needles_of` has
        return any(fold(decoded) != folded for decoded in decodings[1:])
    except UndecodableError:
        return True


class _Hits:
    """Occurrences found while scrubbing one record, per (field, identifier)."""

    __slots__ = ("budget", "counts", "field", "numbers")

    def __init__(self, budget: list[int] | None = None) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.field = ""
        # the needles that are decimal numbers, with their values: read once per record
        self.numbers: tuple[tuple[Needle, Decimal], ...] | None = None
        # characters of decoded text the record may still produce (`_decodings`), shared by
        # every string of the record: past it, each string with an encoding mark is undecodable
        self.budget = [_DECODING_BUDGET] if budget is None else budget

    def add(self, identifier: str, n: int = 1) -> None:
        self.counts[(self.field, identifier)] += n

    def scrubs(self) -> tuple[Scrub, ...]:
        return tuple(Scrub(f, i, n) for (f, i), n in sorted(self.counts.items()))


def _charge_search(budget: list[int] | None, needles: tuple[Needle, ...], low: str) -> None:
    """Charge the record's budget for looking for every needle in `low` (`_SEARCH_CHARS`).

    Raises `UndecodableError` past it: a record of many strings and many needles (a value of
    hundreds of decodings in each identifier field) fails closed instead of taking seconds.
    """
    _charge(budget, len(needles) * (1 + len(low) // _SEARCH_CHARS))


def _charge(budget: list[int] | None, units: int) -> None:
    """Take `units` from the record's budget (None: unbounded); `UndecodableError` past it."""
    if budget is not None:
        budget[0] -= units
        if budget[0] < 0:
            raise UndecodableError


def _first_match(
    text: str, needles: tuple[Needle, ...], budget: list[int] | None = None
) -> Needle | None:
    low = fold(text)
    _charge_search(budget, needles, low)
    for needle in needles:
        if needle.text not in low:
            continue
        address = needle.identifier == "ip"
        if (not needle.whole_token and not address) or _spans(
            text, needle.text, whole_token=needle.whole_token, address=address
        ):
            return needle
    ip = _ip_needle(needles)
    if ip is None:
        return None
    if ":" in low and _ip_spans(low, _ip_texts(needles), budget):  # the IP in an IPv6 spelling
        return ip
    if _aton_spans(low, _aton_targets(needles)):  # as `inet_aton` reads it: `030000001115`
        return ip
    return None


def scrub_text(text: str, needles: tuple[Needle, ...], hits: _Hits) -> str:
    """`text` with every occurrence of a needle and every email address replaced by a token.

    Also where the text holds one only once decoded (any of `_decodings`): the delimited
    tokens that hold it are replaced, keeping the rest of the spelling; if the value spans
    delimiters of its own encoding (`&#45;`), the first decoding that holds it is kept instead,
    and scrubbed the same way. Text that decodes past the guard's bounds is replaced whole by
    `UNDECODABLE_TOKEN` (fail closed).
    """
    try:
        if hits.budget[0] < 0:  # the record's budget is spent: nothing more is read
            raise UndecodableError
        for _ in range(_MAX_DECODINGS):
            decoded_ip = _ip_decoding(text, needles, hits.budget)
            if decoded_ip is not None:
                # the IP written by value once decoded: its tokens go whole before the plain
                # pass replaces a piece of it (a carried IPv4's hex) and the rest stops reading
                # as the address; if it spans delimiters of its encoding, the decoding is kept
                # (found by the twenty-first attack round)
                words = _DELIMITED.split(text)[0::2]  # (a token holds it whole, or none does)
                if any(_ip_decoding(word, needles, hits.budget) for word in words):
                    text = _scrub_tokens(text, needles, hits)
                else:
                    text = _escaped_again(decoded_ip)
            text = _scrub_plain(text, needles, hits)
            if not _may_be_encoded(text):
                return text
            decodings = _decodings(text, hits.budget)[1:]
            held = next((d for d in decodings if _holds_any(d, needles, hits.budget)), None)
            if held is None:
                return text
            tokens = _Hits(hits.budget)
            tokenwise = _scrub_tokens(text, needles, tokens)
            decoded = _decodings(tokenwise, hits.budget)[1:]
            if not any(_holds_any(d, needles, hits.budget) for d in decoded):
                hits.counts.update({(hits.field, i): n for (_, i), n in tokens.counts.items()})
                return tokenwise
            # each round replaced an occurrence and decoded further (bytes not yet decoded are
            # written back as escapes: the text stays valid UTF-8)
            text = _escaped_again(held)
    except UndecodableError:
        pass
    hits.add(UNDECODABLE)
    return UNDECODABLE_TOKEN


def _ip_decoding(text: str, needles: tuple[Needle, ...], budget: list[int]) -> str | None:
    """The first decoding of `text` that writes the IP as an IPv6 address (`_ip_spans`)."""
    if ":" not in text or not _may_be_encoded(text) or _ip_needle(needles) is None:
        return None
    texts = _ip_texts(needles)
    return next(
        (d for d in _decodings(text, budget)[1:] if _ip_spans(fold(d), texts, budget)), None
    )


def _match_in(
    texts: list[str], needles: tuple[Needle, ...], budget: list[int] | None = None
) -> Needle | None:
    """The first needle found in any of the texts (`_first_match`), or None."""
    return next(filter(None, (_first_match(text, needles, budget) for text in texts)), None)


def _holds_any(text: str, needles: tuple[Needle, ...], budget: list[int] | None = None) -> bool:
    return _first_match(text, needles, budget) is not None or _EMAIL.search(text) is not None


def _scrub_plain(text: str, needles: tuple[Needle, ...], hits: _Hits) -> str:
    """Replace the IP written with colons, the needles as spelled, then email addresses.

    Nothing is decoded. The IP's IPv6 spellings are read first, by value (`_ip_spans`), so an
    address that carries the IP's IPv4 is replaced whole, not only its dotted tail.
    """
    if ":" in text:
        ip = _ip_needle(needles)
        texts = _ip_texts(needles)
        spans = [] if ip is None else _ip_spans(text, texts, hits.budget)
        if ip is not None and not text.isascii():
            # read folded too, cut as received: an invisible character `fold` drops no longer
            # splits the address (found by the twenty-first attack round)
            origin = _origin(text)
            folded = _ip_spans(fold(text), texts, hits.budget)
            spans = _union([*spans, *((origin[at], origin[end - 1] + 1) for at, end in folded)])
        if spans:
            text = _cut(text, spans, ip.token)  # type: ignore[union-attr]
            hits.add("ip", len(spans))
    aton = _ip_needle(needles)  # (the IP as `inet_aton` or a person reads it: `192.0.589`)
    if aton is not None:
        found = _aton_spans(fold(text), _aton_targets(needles))
        if found:
            if not text.isascii():  # found folded, cut as received
                origin = _origin(text)
                found = [(origin[at], origin[end - 1] + 1) for at, end in found]
            text = _cut(text, found, aton.token)
            hits.add("ip", len(found))
    low = fold(text)
    _charge_search(hits.budget, needles, low)
    for needle in needles:  # longest first: a value that holds another is replaced whole
        if needle.text in low:
            text, n = _replace(text, needle)
            if n:
                hits.add(needle.identifier, n)
                low = fold(text)
                _charge(hits.budget, len(text))  # (the text folded and mapped again)
    if "@" in text:
        text, n = _email_subn(text)
        if n:
            hits.add(EMAIL, n)
    return text


def _email_subn(text: str) -> tuple[str, int]:
    """`text` with every email address (`_EMAIL`) replaced by `EMAIL_TOKEN`, and how many.

    Also the addresses that start where another one ended inside the same run of local-part
    characters (`a@x.co]b@y.co]c@z.co`), which the lookbehind alone skips; linear time (each
    match is followed by one attempt at its end).
    """
    parts: list[str] = []
    at = count = 0
    found = _EMAIL.search(text)
    while found is not None:
        parts += (text[at : found.start()], EMAIL_TOKEN)
        at = found.end()
        count += 1
        found = _EMAIL_HERE.match(text, at) or _EMAIL.search(text, at)
    if not count:
        return text, 0
    parts.append(text[at:])
    return "".join(parts), count


def _scrub_tokens(text: str, needles: tuple[Needle, ...], hits: _Hits) -> str:
    """Replace each delimited token whose decoded form holds a needle or an email address."""
    parts = _DELIMITED.split(text)
    for index in range(0, len(parts), 2):  # even indices are tokens, odd ones delimiters
        stages = _decodings(parts[index], hits.budget)
        needle = _match_in(stages, needles, hits.budget)
        if needle is not None:
            parts[index] = needle.token
            hits.add(needle.identifier)
        elif any(_EMAIL.search(stage) for stage in stages):
            parts[index] = EMAIL_TOKEN
            hits.add(EMAIL)
    return "".join(parts)


# A JSON number is read by its value: written with an exponent (`1e+16`, orjson's spelling
# from 1e16 up) its digits are not the identifier's text, nor are they with leading zeros, a
# sign or trailing zeros of a fraction (`0012345678`, `+14155550100`, `12345678.50` as ids):
# a number equal to a numeric identifier is one (`_scrub_number`).
_NUMERIC = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")
# A number in JSON text: outside strings, the only tokens starting with `-` or a digit
_JSON_NUMBER = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|([-0-9])')


def _holds_number_for(text: str, values: Iterable[str]) -> bool:
    """True when a value is a decimal number (`_NUMERIC`) and the JSON `text` holds a number.

    The number may then be the value by value (`_scrub_number`); `text` is an event's JSON.
    """
    if not any(map(_NUMERIC.fullmatch, values)):
        return False
    return any(token.group(1) for token in _JSON_NUMBER.finditer(text))


def _equal_number(text: str, needles: tuple[Needle, ...], hits: _Hits) -> Needle | None:
    """The first needle that is a decimal number equal to the JSON number `text`, or None.

    The numeric needles and their values are read once per record (`_Hits.numbers`, charged
    to its budget by their length); each number then costs one comparison per numeric needle.
    """
    numbers = hits.numbers
    if numbers is None:
        numeric = [needle for needle in needles if _NUMERIC.fullmatch(needle.text)]
        _charge(hits.budget, len(needles) + sum(len(n.text) for n in numeric) // _SEARCH_CHARS)
        numbers = hits.numbers = tuple((needle, Decimal(needle.text)) for needle in numeric)
    if not numbers:
        return None
    _charge(hits.budget, len(numbers) * (1 + len(text) // _SEARCH_CHARS))
    number = Decimal(text)
    for needle, value in numbers:
        if value == number:
            return needle
    return None


def _scrub_number(value: int | float, needles: tuple[Needle, ...], hits: _Hits) -> Any:
    text = _dumps(value).decode()  # the spelling the serialized record (and the check) has
    try:
        if hits.budget[0] < 0:  # the record's budget is spent: nothing more is read
            raise UndecodableError
        needle = _first_match(text, needles, hits.budget)
        if needle is None and "e" in text:  # `1e+16`: as written out, `10000000000000000`
            needle = _first_match(format(Decimal(text), "f"), needles, hits.budget)
        if needle is None:
            needle = _equal_number(text, needles, hits)
    except UndecodableError:  # the record's budget is spent: fail closed
        hits.add(UNDECODABLE)
        return UNDECODABLE_TOKEN
    if needle is None:
        return value
    hits.add(needle.identifier)
    return needle.token


def scrub_value(value: Any, needles: tuple[Needle, ...], hits: _Hits, *, names: bool) -> Any:
    """A copy of a decoded JSON value with every occurrence of the needles replaced.

    `hits` counts the replacements. `names` False keeps the object's own keys (field or
    property names chosen by the config) as they are. An object or array read when the
    record's budget is spent (or that spends it) is replaced whole by `UNDECODABLE_TOKEN`:
    failing closed costs no walk of its items, and the output stays small.
    """
    kind = type(value)
    if kind is str:
        return scrub_text(value, needles, hits)
    if kind is dict or kind is list:
        if hits.budget[0] >= 0:
            scrubbed = _scrub_container(value, needles, hits, names=names)
            if hits.budget[0] >= 0:
                return scrubbed
        hits.add(UNDECODABLE)
        return UNDECODABLE_TOKEN
    if kind is int or kind is float:
        return _scrub_number(value, needles, hits)
    return value  # bool, None


def _scrub_container(
    value: dict[str, Any] | list[Any], needles: tuple[Needle, ...], hits: _Hits, *, names: bool
) -> Any:
    if isinstance(value, list):
        return [scrub_value(item, needles, hits, names=True) for item in value]
    result: dict[str, Any] = {}
    for key, item in value.items():
        name = key
        if names:
            name = scrub_text(key, needles, hits)
            while name in result:  # two keys that became equal: keep both
                name += "_"
        result[name] = scrub_value(item, needles, hits, names=True)
    return result


def has_at_sign(text: str) -> bool:
    """True when `text` holds an at-sign in any spelling.

    `@`, `%40` (also double-encoded), an HTML character reference, a full-width or small
    commercial at. Single characters are tested first: on a str they are the cheapest search
    there is.
    """
    if "@" in text:
        return True
    if "%" in text and ("%40" in text or "%2540" in text):
        return True
    if "&" in text and ("&#" in text or "&commat" in text):
        return True
    return not text.isascii() and ("\uff20" in text or "\ufe6b" in text)


def _may_hide_spelling(text: str) -> bool:
    """True when `text` holds an at-sign in any spelling, or text that decoding could change.

    `text` is folded (`fold`: lower case, decomposed). Decoding could change percent-encoding, a
    character reference (`&#64;`, `&period;`, `&amp` and HTML's other legacy names, which decode
    without a `;`), compatibility characters (full-width, small, circled, superscript forms:
    what NFKD changes in decomposed text), or the ideographic full stops URL parsers read as `.`.
    """
    if "@" in text or "%" in text:
        return True
    if "&" in text and (("#" in text and "&#" in text) or _NAMED_REF.search(text) is not None):
        return True
    if text.isascii():
        return False
    return not unicodedata.is_normalized("NFKD", text) or _has_ideographic_stop(text)


def output_clean(text: str, spellings: Iterable[str], *, marks: bool = True) -> bool:
    """True when a serialized output (value or key, decoded) surely holds no identifier.

    No identifier value (`GuardedInput.spellings`) and no email address.

    Encoded spellings were already replaced in the input (`ValueGuard.prepare`), and no operator
    encodes text, so the plain spellings are what an output can still hold. `marks` False
    skips the at-sign test: for an output built from a `marks_free` input by a sink whose config
    text holds no at-sign spelling, so no email address can be in it.
    """
    if marks and has_at_sign(text):
        return False
    for spelling in spellings:  # noqa: SIM110 - a plain loop: no generator on the hot path
        if spelling in text:
            return False
    return True


def output_bytes_clean(value: bytes, spellings: tuple[str, ...], *, marks: bool = True) -> bool:
    """`output_clean` of a serialized output (value or key) as bytes.

    ASCII text is scanned in C (gateway/_guardscan.c: lower-cased once, each spelling one
    vectorised search); other text, or other argument types, decoded and folded for
    `output_clean`.
    """
    if _output_clean is not None:
        answer = _output_clean(value, spellings, marks)
        if answer is not None:
            return answer
    return output_clean(fold(value.decode()), spellings, marks=marks)


_ADDRESS_CHARACTERS: Final = frozenset("0123456789abcdefABCDEF.:")


def _host_bits_set(address: str) -> bool:
    """True when `address` surely has host bits set under any prefix a sink may keep.

    Its last group (after the last `.` or `:`) is a number not divisible by 4, and no sink keeps
    more than /30 of an IPv4 or /64 of an IPv6 address (`ip_truncate.PREFIX_LIMITS`; a whole
    address is OPAQUE): then its network prefix differs from it, and (a dotted quad or a
    compressed group list no longer than it) cannot hold it. The truncation is skipped then:
    most addresses are new, and truncating each costs more than the rest of the check.

    An IPv6 address that carries an IPv4 one (6to4, Teredo, mapped: `embedded_ipv4s`) is never
    sure: `ip_truncate` truncates the IPv4 in it, not its last group, and the network prefix
    of `2002:c633:6404::1` holds the carried `c633:6404`. Nor is text in other characters than
    an address's (a forwarded-for list, `[v6]:port`, a zone): `ip_truncate` writes the prefix
    of its first address (`client_address`), whose host bits may be zero.
    """
    if not _ADDRESS_CHARACTERS.issuperset(address):
        return False  # a list, a port in brackets, a zone: truncated as its first address
    dot = "." in address
    if ":" in address and (dot or embedded_ipv4s(address)):
        return False
    tail = address.rpartition("." if dot else ":")[2]
    try:
        return int(tail, 10 if dot else 16) % 4 != 0
    except ValueError:
        return False


class SynthesisRisk:
    """Which identifier values the engine's operators could write rather than copy.

    The proof behind `GuardedInput.proven`: when every identifier value occurs in the event
    only in its own field (and no at-sign or encoding mark occurs), any run an operator copies
    from the input holds none, and the identifier fields themselves leave only as pseudonyms,
    network prefixes, markers or not at all (keep is never allowed on them, gateway.operators).
    So an output can hold a value only inside text an operator wrote (`Synthesis`). A value is
    *writable* when it holds a joiner an operator puts between copied runs, when it is inside
    one of the fixed texts (placeholders, markers, browser families, key ids, event type
    labels), or when every character of it is in the alphabet of text some operator generates
    whole (a pseudonym's hex digits, an address's prefix, a major version's digits). The IP's
    own spellings are tested against its network prefixes themselves (`ip_writable`).

    `syntheses` pairs each operator's `Synthesis` with whether it works on the event's own
    `ip` field; OPAQUE ones are left out (their sinks check every output, `SinkPlan`).
    `vocabulary` adds the engine's own fixed texts. Answers are cached per value (bounded).
    """

    def __init__(
        self, syntheses: Iterable[tuple[Synthesis, bool]], vocabulary: Iterable[str] = ()
    ) -> None:
        joiners: set[str] = set()
        texts = list(vocabulary)
        alphabets: list[str] = []
        prefix_alphabets: list[str] = []
        truncators = []
        for synthesis, on_ip in syntheses:
            if synthesis.opaque:
                continue
            joiners.update(synthesis.joiners)
            texts += synthesis.vocabulary
            if synthesis.truncates_ip is not None and on_ip:
                prefix_alphabets.append(synthesis.alphabet)
                truncators.append(synthesis.truncates_ip)
            elif synthesis.alphabet:
                alphabets.append(synthesis.alphabet)
        self._joiners = "".join(sorted(joiners))
        # Every piece of every fixed text: a value is inside one when it is in this set.
        self._pieces = frozenset(
            text[start:end]
            for text in dict.fromkeys(fold(text) for text in texts)
            for start in range(len(text))
            for end in range(start + 1, len(text) + 1)
        )
        # One alphabet, the union: a value made of its characters may be written (a few more
        # values are checked than strictly needed, for one C-level test)
        self._alphabet = "".join(sorted(set("".join(alphabets))))
        self._value_alphabet = "".join(sorted(set("".join(alphabets + prefix_alphabets))))
        self._joined = re.compile(f"[{re.escape(self._joiners)}]").search if joiners else None
        # Every value (joined by NUL, which no alphabet holds) has a character outside the
        # alphabet: one linear match for all of an event's values.
        alphabet = re.escape(self._value_alphabet.replace(_SEPARATOR, ""))
        outside = rf"[{alphabet}]*[^{alphabet}{_SEPARATOR}][^{_SEPARATOR}]*"
        self._each_outside_alphabet = (
            re.compile(rf"{outside}(?:{_SEPARATOR}{outside})*").fullmatch if alphabet else None
        )
        self._truncators = tuple(truncators)
        # (for `ip_writable`) a spelling made of the non-IP operators' alphabet alone
        own = re.escape(self._alphabet.replace(_SEPARATOR, ""))
        self._whole_in_alphabet = (
            re.compile(rf"(?:\A|{_SEPARATOR})[{own}]*(?:{_SEPARATOR}|\Z)").search if own else None
        )

    def __repr__(self) -> str:
        return f"SynthesisRisk(joiners={self._joiners!r}, pieces={len(self._pieces)})"

    def scanner_parts(self) -> tuple[str, str, frozenset[str], str]:
        """For the C scanner: joiners, alphabet, pieces, IP alphabet.

        What `any_writable` tests, and the alphabet `ip_writable` tests an address's spellings
        against.
        """
        return (
            self._joiners,
            self._value_alphabet.replace(_SEPARATOR, ""),
            self._pieces,
            self._alphabet.replace(_SEPARATOR, ""),
        )

    def writable(self, spelling: str) -> bool:
        """True when an operator could write `spelling` (lower case, as in JSON)."""
        return self.any_writable((spelling,), spelling)

    def any_writable(self, spellings: Collection[str], joined: str) -> bool:
        """True when an operator could write any of `spellings` (lower case, as in JSON).

        `joined` is the spellings joined by a NUL character (none of them holds one):
        each test is one C-level search for all of an event's values, not one per value (the
        hot path). Not cached: identifiers such as cookie ids are new most of the time.
        """
        if not self._pieces.isdisjoint(spellings):
            return True
        if self._joined is not None and self._joined(joined) is not None:
            return True
        each_outside = self._each_outside_alphabet
        return each_outside is not None and each_outside(joined) is None

    def ip_writable(self, address: str, spellings: Sequence[str]) -> bool:
        """True when an operator could write one of `spellings` of the event's IP `address`.

        `spellings` are in lower case (as in JSON, and its other forms: `ip_spellings`); the
        address's network prefixes (the truncating operators applied to it) are searched too.
        Not cached: `ValueGuard` keeps the answer with the address's other spellings.
        """
        # The address as one number (`3221226061`, `c000024d`) is left out: an operator writes
        # it only by chance (a pseudonym's hex, an epoch's digits), as a short value inside a
        # hex pseudonym is chance, not an occurrence; its prefixes' numbers are not the address.
        # (the IP's own text, the first spelling, is tested whatever it is)
        spellings = [*spellings[:1], *(s for s in spellings[1:] if not _number_form(s))]
        # one C-level test each for all of them, joined by NUL (no address holds one; a text
        # that does is split there, which only finds more of it writable)
        joined = _SEPARATOR.join(spellings)
        if not self._pieces.isdisjoint(spellings):
            return True
        if self._joined is not None and self._joined(joined) is not None:
            return True
        if self._whole_in_alphabet is not None and self._whole_in_alphabet(joined) is not None:
            return True
        if not self._truncators or _host_bits_set(address):
            return False
        outputs = [truncate(address) for truncate in self._truncators]
        written = [out.lower() for out in outputs if type(out) is str]
        return any(spelling in w for spelling in spellings for w in written)


class ValueGuard:
    """Finds and replaces the event's own identifier values (and email addresses) by value.

    Built once per engine; `needles` is per event (values are remembered in a bounded cache, so
    a subject seen again costs a dict lookup). `min_length` (characters, >= 1) is the shortest
    value matched inside other text; shorter values match as whole tokens only. `risk` is what
    the engine's operators could write (None: nothing is proven, every output is checked).
    `native` False runs `prepare`'s scans in Python even where the C scanner could (the
    tests compare both). Raises `ValueError` for a `min_length` below 1.
    """

    def __init__(
        self, min_length: int, risk: SynthesisRisk | None = None, *, native: bool = True
    ) -> None:
        if min_length < 1:
            raise ValueError(f"min_length: must be at least 1; got {min_length}")
        self.min_length = min_length
        self._risk = risk
        self._cache: dict[tuple[str, str], tuple[Needle, ...]] = {}
        # (identifier, value) of the cached values whose own decodings went past the bounds
        self._overflow: set[tuple[str, str]] = set()
        self._ip_cache: dict[str, tuple[str | bytes, ...]] = {}
        self._ip_written_cache: dict[str, bool] = {}
        self._scan_event: (
            Callable[[bytes, object, ValueGuard], GuardedInput | int | None] | None
        ) = None
        self._scanner: Any = None
        if native and _guardscan is not None:
            parts = risk.scanner_parts() if risk is not None else ("", "", frozenset(), "")
            cls = type(self)
            scanner = _guardscan.Scanner(
                _LEGACY_NAMES_JOINED,
                *parts[:3],
                risk is not None,
                _ID_FIELDS,
                "ip",
                # read by the scanner (the dicts are cleared, never rebound); the functions are
                # the class's (a subclass's overrides included), given the guard at each call (no
                # reference cycle); `_ip_forms` must answer a tuple of str
                self._ip_cache,
                self._ip_written_cache,
                cls._ip_forms,
                cls._ip_written,
                GuardedInput,
                _NO_HITS,
                # an IPv4 address's forms and (host bits set) writability read in C, as
                # `_ip_forms` and `_ip_written` define them, unless a subclass redefines those
                ip_alphabet=parts[3],
                native_ipv4=(
                    cls._ip_forms is ValueGuard._ip_forms
                    and cls._ip_written is ValueGuard._ip_written
                ),
                cache_size=_NEEDLE_CACHE_SIZE,
            )
            self._scan_event = scanner.scan_event
            self._scanner = scanner
        # The last event prepared, so its audit records reuse what `prepare` found out: in a
        # list of one, which the bound C scanner sets without an attribute store (`_latest`).
        self._latest: list[GuardedInput | None] = [None]
        self._budget_of: Mapping[str, Any] | None = None  # the record `_budget` is for
        self._budget = [_DECODING_BUDGET]

    def __repr__(self) -> str:
        return f"ValueGuard(min_length={self.min_length})"

    def forget(self) -> None:
        """Drop what the guard remembers of values and addresses seen (its bounded caches).

        Answers stay the same; the next event of each value costs its first sight again (the
        benchmark starts each round so).
        """
        self._cache.clear()
        self._overflow.clear()
        self._ip_cache.clear()  # (the C scanner reads these dicts: cleared, never rebound)
        self._ip_written_cache.clear()

    def _needles_of(self, identifier: str, text: str) -> tuple[Needle, ...]:
        key = (identifier, text)
        needles = self._cache.get(key)
        if needles is None:
            found = [_make_needle(identifier, text, self.min_length, derived=False)]
            decodings: list[str] = []
            if _may_be_encoded(text):  # a value that is itself an encoding: decoded too
                try:
                    decodings = _decodings(text, [_VALUE_DECODING_BUDGET])[1:]
                except UndecodableError:  # a value past bounds: its record fails closed
                    self._overflow.add(key)
                found += [
                    _make_needle(identifier, decoded, self.min_length, derived=True)
                    for decoded in decodings
                ]
            if " " in text:  # form encoding's spelling of it
                plus = text.replace(" ", "+")
                found.append(_make_needle(identifier, plus, self.min_length, derived=True))
            # `dev-8c2b7a61 `, `dev-8c2b7a61%20`: the value a reader takes is the trimmed one
            found += [
                _make_needle(identifier, spelled.strip(), self.min_length, derived=True)
                for spelled in (text, *decodings)
                if _padded(spelled)
            ]
            if identifier == "ip":
                found += [
                    _make_needle(identifier, form, self.min_length, derived=True)
                    for form in ip_spellings(text)
                ]
                if not ip_addresses_complete(text):  # more addresses than read: fail closed
                    self._overflow.add(key)
            # A value of invisible characters or marks only folds to nothing: nothing could be
            # looked for, so its record fails closed (found by the review of 835a531)
            if not found[0].text:
                self._overflow.add(key)
            needles = tuple(needle for needle in found if needle.text)
            if len(self._cache) >= _NEEDLE_CACHE_SIZE:
                self._cache.clear()
                self._overflow &= {key}
            self._cache[key] = needles
        return needles

    def needles(self, fields: Mapping[str, Any]) -> tuple[Needle, ...]:
        """The needles of one event's identifier fields, longest value first, no repeats."""
        found: list[Needle] = []
        for identifier in GUARDED_IDENTIFIERS:
            text = fields.get(identifier)
            if type(text) is str and text:
                found += self._needles_of(identifier, text)
        if len(found) > 1:
            unique = {needle.text: needle for needle in reversed(found)}  # first class wins
            found = sorted(unique.values(), key=lambda n: -len(n.text))
        return tuple(found)

    def prepare(self, fields: Mapping[str, Any], canonical: bytes | None = None) -> GuardedInput:
        """The event ready for the operators: free text scrubbed where needed.

        `canonical` is the event's JSON as orjson writes it (computed here when not given).
        Fast path: when no at-sign or encoding mark occurs and each identifier value occurs
        exactly once (in its own field), nothing else can hold one; otherwise the needles are
        built and the event is looked at closely. On the fast path the input is also `proven`
        when no value is one the operators could write (`SynthesisRisk`). ASCII JSON without
        an escape is scanned in C (one lower-casing, one pass per search: gateway/_guardscan.c);
        other text by `_prepare_text`, the definition.
        """
        encoded = _dumps(fields) if canonical is None else canonical
        scan = self._scan_event
        scanned = None if scan is None else scan(encoded, fields, self)
        if type(scanned) is GuardedInput:
            self._latest[0] = scanned
            return scanned
        return self._after_scan(fields, encoded, scanned)

    def _after_scan(
        self, fields: Mapping[str, Any], canonical: bytes | None, scanned: object
    ) -> GuardedInput:
        """`prepare` past the C scan.

        `scanned` is its flags (an at-sign, an encoding mark or a repeated value: the close
        look), or None (declined, or no scan: the Python definition runs).
        """
        if canonical is None:
            return self.prepare(fields)
        if scanned is not None:
            marks_free = not scanned & _MARKS  # type: ignore[operator]
            return self._close_look(fields, fold(canonical.decode()), marks_free)
        return self._prepare_text(fields, canonical)

    def preparer(self) -> Callable[[Mapping[str, Any], bytes | None], GuardedInput]:
        """`prepare` as one callable for the engine's hot path.

        Where the C scanner runs (and no subclass redefines `prepare`), the scanner bound to
        this guard: its fast path runs no Python frame; otherwise `prepare` itself.
        """
        if self._scanner is None or type(self).prepare is not ValueGuard.prepare:
            return self.prepare
        bound: Callable[[Mapping[str, Any], bytes | None], GuardedInput]
        bound = self._scanner.bind(self, type(self)._after_scan, self._latest)
        return bound

    def _prepare_text(self, fields: Mapping[str, Any], encoded: bytes) -> GuardedInput:
        """`prepare` in Python: for any text (the C scanner takes ASCII without escapes)."""
        get = fields.get
        # str searches: a single character is a memchr there, not in bytes. Lower case: an
        # identifier in another case is still the identifier.
        text = fold(encoded.decode())
        # Without a backslash no string in the event has an escape, so a value's JSON spelling
        # is the value itself (orjson writes non-ASCII as is).
        plain = "\\" not in text
        marks_free = clean = not _may_hide_spelling(text)
        risk = self._risk
        proven = clean and risk is not None
        values = list(filter(None, map(get, _ID_FIELDS)))
        if clean and any(map(_decodes, values)):  # a value that is itself an encoding
            clean = proven = False
        if clean and any(map(_padded, values)):  # its trimmed self may be elsewhere
            clean = proven = False
        if clean and _holds_number_for(text, values):  # `1e16` for `10000000000000000`
            clean = proven = False
        ip = get("ip")
        if clean and "+" in text and _spaced([*values, ip] if ip else values):
            clean = proven = False  # `+` may stand for a value's space
        if plain:
            # Without an escape in the text no value holds a NUL: one fold, one split, for all
            joined = fold(_SEPARATOR.join(values))
            spellings = joined.split(_SEPARATOR) if values else []
        else:
            spellings = [_json_text(fold(value)) for value in values]
            joined = _SEPARATOR.join(spellings)
        if clean and spellings:
            counts = list(map(text.count, spellings))
            if counts.count(1) != len(counts):  # each value once: in its own field
                clean = proven = False
            elif proven and risk.any_writable(spellings, joined):  # type: ignore[union-attr]
                proven = False
        count = text.count
        if ip:
            low = fold(ip)
            own = low if plain else _json_text(low)
            spellings.append(own)
            if clean:
                if count(own) != 1:
                    clean = proven = False
                else:
                    forms = self._ip_forms(ip)
                    spellings += [form for form in forms if type(form) is str]
                    if _forms_elsewhere(text, low, ip, forms):
                        clean = proven = False
                    if proven and self._ip_written(ip, forms):
                        proven = False
        if not clean:
            return self._close_look(fields, text, marks_free)
        # tuple.__new__ skips NamedTuple's Python-level __new__ (hot path)
        guarded = (fields, tuple(spellings), _NO_HITS, fields, self, marks_free, proven)
        self._latest[0] = prepared = _new_tuple(GuardedInput, guarded)
        return prepared

    def _close_look(self, fields: Mapping[str, Any], text: str, marks_free: bool) -> GuardedInput:
        """The event looked at closely: with its needles, its free text scrubbed if it holds any.

        `text` is its canonical JSON, decoded and folded; `marks_free` whether that holds no
        at-sign or encoding mark.
        """
        self._budget_of = None  # a new decision of the record: a new decoding budget
        needles = self.needles(fields)
        overflowed = self._overflowed(fields)
        if overflowed:  # a value's spellings past the bounds: fail closed
            self._budget_of, self._budget = fields, [-1]
        spellings = tuple(spelling for needle in needles for spelling in needle.encoded)
        plus = "+" in text and _spaced(needle.text for needle in needles)  # see `_spaced`
        if (
            not plus
            and not overflowed
            and self.input_clean(text, fields, needles)
            and not self._ip_elsewhere(text, fields)
            and not _holds_number_for(text, [needle.text for needle in needles])
        ):
            found = (fields, spellings, _NO_HITS, fields, self, marks_free, False)
        else:
            scrubbed, hits = self.scrub_fields(fields, needles, self.record_budget(fields))
            found = (scrubbed, spellings, hits, fields, self, False, False)
        self._latest[0] = prepared = _new_tuple(GuardedInput, found)
        return prepared

    def _overflowed(self, fields: Mapping[str, Any]) -> bool:
        """True when an identifier value's own decodings went past the guard's bounds.

        Its decoded spellings are then not all known: every string of the record is replaced
        whole by `[undecodable]` (an exhausted budget, `scrub_text`).
        """
        if not self._overflow:
            return False
        get = fields.get
        return any((name, get(name)) in self._overflow for name in GUARDED_IDENTIFIERS)

    def _ip_forms(self, address: str) -> tuple[str | bytes, ...]:
        """The address's other spellings (`ip_spellings`), then its anchors (`ip_anchors`).

        Anchors are bytes, which marks it as counted, not searched in outputs (the C scanner
        reads the same tuple). Remembered (bounded).
        """
        forms = self._ip_cache.get(address)
        if forms is None:
            if len(self._ip_cache) >= _NEEDLE_CACHE_SIZE:
                self._ip_cache.clear()
            forms = self._ip_cache[address] = (*ip_spellings(address), *ip_anchors(address))
        return forms

    def _ip_elsewhere(self, text: str, fields: Mapping[str, Any], *, own: bool = True) -> bool:
        """True when `text` (folded) holds an anchor of the IP (`ip_anchors`) elsewhere.

        More often than the IP itself does (`own`: the text holds the IP's own field, as the
        event's JSON does), or at all (not `own`: one string of the event, its event id).
        """
        ip = fields.get("ip")
        if type(ip) is not str or not ip:
            return False
        low = fold(ip)
        for form in self._ip_forms(ip):
            if type(form) is bytes:
                piece = form.decode()
                if text.count(piece) != (low.count(piece) if own else 0):
                    return True
        return _aton_elsewhere(text, low, ip)

    def _ip_written(self, address: str, forms: tuple[str | bytes, ...]) -> bool:
        """Whether an operator could write any spelling of the address, remembered (bounded).

        Asked for an input still proven only: an audit record's scrub needs the spellings alone.
        Without a risk nothing is proven, so any address counts as writable.
        """
        risk = self._risk
        if risk is None:
            return True
        written = self._ip_written_cache.get(address)
        if written is None:
            if len(self._ip_written_cache) >= _NEEDLE_CACHE_SIZE:
                self._ip_written_cache.clear()
            low = fold(address)
            own = _json_text(low)
            spelled = [form for form in forms if type(form) is str]
            spellings = (low, *spelled) if own == low else (low, own, *spelled)
            written = risk.ip_writable(address, spellings)
            self._ip_written_cache[address] = written
        return written

    @staticmethod
    def input_clean(canonical: str, fields: Mapping[str, Any], needles: Iterable[Needle]) -> bool:
        """True when the event's free text surely holds no needle and no email address.

        `canonical` is the event's JSON as orjson writes it, decoded and in lower case (`fold`,
        as the needles are). A needle found only as often as the identifier fields themselves
        hold it sits nowhere else; text that decoding could change (percent-encoding, character
        references, full-width forms) is always looked at.
        """
        if _may_hide_spelling(canonical):
            return False
        for needle in needles:
            for spelling in needle.encoded:
                count = canonical.count(spelling)
                if not count or (
                    count == 1 and spelling is needle.encoded[0] and not needle.derived
                ):
                    continue  # absent, or only in its own field (which holds it at least once)
                if count != _own_count(fields, spelling):
                    return False
        return True

    @staticmethod
    def scrub_fields(
        fields: Mapping[str, Any], needles: tuple[Needle, ...], budget: list[int] | None = None
    ) -> tuple[dict[str, Any], dict[str, Counter[str]]]:
        """A copy of the event's fields with the free text scrubbed, and the hits per field.

        Identifier fields stay as they are: the sink's operators decide what leaves of them and
        the output check catches what would leave raw. `budget`: the record's decoding budget
        (`record_budget`; None: a budget of its own).
        """
        hits = _Hits(budget)
        result: dict[str, Any] = {}
        for name, value in fields.items():
            if name in UNSCRUBBED_FIELDS:
                result[name] = value
                continue
            if name == PROPERTIES and type(value) is dict:
                result[name] = _scrub_properties(value, needles, hits)
            else:
                hits.field = name
                result[name] = scrub_value(value, needles, hits, names=True)
        per_field: dict[str, Counter[str]] = {}
        for (field, identifier), n in hits.counts.items():
            per_field.setdefault(field, Counter())[identifier] += n
        return result, per_field

    @staticmethod
    def scrub_output(
        output: dict[str, Any], needles: tuple[Needle, ...], budget: list[int] | None = None
    ) -> tuple[dict[str, Any], tuple[Scrub, ...]]:
        """A copy of a sink output with every occurrence replaced, and what was replaced.

        `budget`: the record's decoding budget, shared with its input's scrub and its other
        outputs' (`record_budget`; None: a budget of its own).
        """
        hits = _Hits(budget)
        result: dict[str, Any] = {}
        for name, value in output.items():
            if name == TIMESTAMP_FIELD:
                result[name] = value
            elif name == PROPERTIES and type(value) is dict:
                result[name] = _scrub_properties(value, needles, hits)
            else:
                hits.field = name
                result[name] = scrub_value(value, needles, hits, names=True)
        return result, hits.scrubs()

    def record_budget(self, source: Mapping[str, Any]) -> list[int]:
        """The decoding budget of the record `source` (its fields), shared by every scrub of it.

        A one-item list (`_Hits.budget`), new for each record: so the input's scrub and every
        sink's output scrub together stay within `_DECODING_BUDGET`.
        """
        if self._budget_of is not source:
            self._budget_of = source
            self._budget = [_DECODING_BUDGET]
        return self._budget

    def scrub_free_text(
        self, text: str, fields: Mapping[str, Any], canonical: bytes | None = None
    ) -> str:
        """One string of an event (its event id, for an audit record), scrubbed.

        The event's own identifier values and email addresses are replaced. When `text` is the
        event's `event_id` and the event was the last one prepared, the answer is `prepare`'s.
        An event every sink drops is not prepared by the engine, yet its audit records need its
        event id: then the C scan reads the event (`canonical`: `fields` as orjson writes it),
        and its fast path's answer (the event surely clean, or clean once proven) is taken.
        Otherwise only `text` is read, as any other string: it comes back as is when it surely
        holds none (no at-sign or encoding mark, no identifier value in any case), without
        building the event's needles; else it is scrubbed with them. So the cost of a dropped
        event's audit record never grows with hostile text elsewhere in the event (the close
        look, `prepare`'s slow path, reads the whole event: tens of ms for a 60 KB encoded URL).
        """
        if text is fields.get("event_id"):
            last = self._latest[0]
            if last is None or last.source is not fields:
                scan = self._scan_event
                scanned = None if scan is None or not canonical else scan(canonical, fields, self)
                last = scanned if type(scanned) is GuardedInput else None
            if last is not None:  # the whole event looked at, this text included: its answer
                return text if not last.hits else str(last.fields.get("event_id", text))
        low = fold(text)
        if (
            not _may_hide_spelling(low)
            and "+" not in low  # (`+` may stand for a value's space: `_spaced`)
            and not self._ip_elsewhere(low, fields, own=False)
        ):
            get = fields.get
            for name in GUARDED_IDENTIFIERS:
                value = get(name)
                # every spelling searched: the value, its decoded form, an IP's other forms
                if (
                    type(value) is str
                    and value
                    and any(needle.text in low for needle in self._needles_of(name, value))
                ):
                    break
            else:
                if not self._overflowed(fields):  # (known once each value's needles are)
                    return text
        needles = self.needles(fields)
        return scrub_text(text, needles, _Hits([-1] if self._overflowed(fields) else None))


def _own_count(fields: Mapping[str, Any], spelling: str) -> int:
    """How often `spelling` occurs in the lower-cased JSON strings of the fields left alone.

    Those are the identifiers themselves and the validated timestamp.
    """
    total = 0
    for name in UNSCRUBBED_FIELDS:
        value = fields.get(name)
        if type(value) is str:
            total += _json_text(fold(value)).count(spelling)
    return total


def _scrub_properties(
    properties: Mapping[str, Any], needles: tuple[Needle, ...], hits: _Hits
) -> dict[str, Any]:
    """`properties` scrubbed; property names (the allowlist's vocabulary) are kept."""
    result: dict[str, Any] = {}
    for name, value in properties.items():
        hits.field = f"{PROPERTIES}.{name}"
        result[name] = scrub_value(value, needles, hits, names=True)
    return result
