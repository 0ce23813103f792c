"""The C scanner (gateway/_guardscan.c) answers as the Python definition in gateway/guard.py.

`ValueGuard.prepare` scans ASCII JSON without escapes in C and any other text in Python
(`_prepare_text`); `output_bytes_clean` scans ASCII outputs in C and others with
`output_clean`. Generated events and outputs go through both; every answer must be the same
(fields, spellings, hits, marks, proof), including events the C scanner declines.
"""

from __future__ import annotations

import html.entities
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import guard
from gateway.engine import Engine
from gateway.guard import (
    GuardedInput,
    SynthesisRisk,
    ValueGuard,
    fold,
    ip_spellings,
    output_bytes_clean,
    output_clean,
)
from gateway.operators.base import Synthesis
from tests.unit.helpers import UA_CHROME, event_dict

LEGACY = sorted({name for name in html.entities.html5 if not name.endswith(";")})
# Text around the values: delimiters, marks and their near misses (`&` before names that are
# and are not references, `;` at and past the 32-character limit), case, non-ASCII, escapes.
FRAGMENTS = st.sampled_from(
    [
        "/",
        "?",
        "&",
        "=",
        "#",
        ";",
        "&#",
        "&#64;",
        "&amp",
        "&AMP;",
        "&sid=1",
        "&cent",
        "&Center=2",
        "&notit",
        "&x;",
        "&ab;",
        "&" + "a" * 31 + ";",
        "&" + "a" * 32 + ";",
        "&" + "a" * 33 + ";",
        "&9;",
        "%",
        "%40",
        "@",
        "\\",
        '"',
        "é",
        "Ｅ",
        "İ",
        "ǅ",
        " ",
        ":",
        ".",
    ]
)
WORDS = st.text(alphabet="abcdefXYZ0129-_.:", max_size=10)
IDS = st.sampled_from(
    ["u-7f3a9c11", "U-7F3A9C11", "ck-0a1b2c3x", "deadbeef", "192.0.2.0", ":id", "chrome", "a=b"]
) | st.text(alphabet="abcdefABC0123456789.:-/=&?", min_size=1, max_size=14)
IPS = st.sampled_from(["192.0.2.77", "192.0.2.0", "::ffff:198.51.100.7", "2001:DB8::1", "", "x"])


@st.composite
def texts(draw: st.DrawFn, values: list[str], marks: bool) -> str:
    planted = st.sampled_from(values or ["v"]).map(_recase(draw))
    parts = draw(st.lists((FRAGMENTS | WORDS | planted) if marks else WORDS | planted, max_size=8))
    return "".join(parts)


def _recase(draw: st.DrawFn) -> Any:
    return draw(st.sampled_from([str, str.upper, str.lower, str.title]))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(IDS, min_size=5, max_size=5))
    ip = draw(IPS)
    values = [*ids, ip, *ip_spellings(ip)]  # the address's other spellings planted too
    optional = draw(st.sampled_from([None, ""]))
    marks = draw(st.booleans())  # without: most events take the scanner's clean path
    return event_dict(
        subject_id=ids[0],
        device_id=ids[1],
        cookie_id=ids[2],
        pixel_id=draw(st.sampled_from([ids[3], optional])),
        advertising_id=ids[4],
        ip=ip or None,
        page="https://www.example.com/" + draw(texts(values, marks)),
        referrer=draw(texts(values, marks)),
        user_agent=UA_CHROME,
        properties={
            "experiment": draw(texts(values, marks)),
            "n": [draw(texts(values, marks)), 12345],
        },
    )


def _answer(prepared: GuardedInput) -> tuple[Any, ...]:
    return (
        orjson.dumps(prepared.fields),
        prepared.spellings,
        {field: dict(counts) for field, counts in prepared.hits.items()},
        prepared.marks_free,
        prepared.proven,
    )


@pytest.fixture(scope="module", params=["avx2", "sse2", "scalar"], autouse=True)
def vectors(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs with each of the scanner's searches this CPU has."""
    assert guard._guardscan is not None
    if not guard._guardscan._use_vectors(request.param):
        pytest.skip(f"no {request.param} search on this CPU")
    yield request.param
    use = guard._guardscan._use_vectors
    assert use("avx2") or use("sse2") or use("scalar")  # the best this CPU has, as at import


@pytest.fixture(scope="module")
def risk(engine: Engine) -> SynthesisRisk:
    assert engine.guard is not None
    risk = engine.guard._risk
    assert risk is not None
    return risk


def test_the_c_scanner_is_built_and_used(engine: Engine) -> None:
    # `make install` builds it; without it the guard is right but slow, so CI fails here
    assert guard._guardscan is not None
    assert engine.guard is not None
    assert engine.guard._scan_event is not None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=events(), with_risk=st.booleans(), min_length=st.sampled_from([1, 6, 12]))
def test_when_an_event_is_prepared_then_c_and_python_answer_the_same(
    risk: SynthesisRisk, data: dict[str, Any], with_risk: bool, min_length: int
) -> None:
    chosen = risk if with_risk else None
    native = ValueGuard(min_length, chosen)
    python = ValueGuard(min_length, chosen, native=False)
    canonical = orjson.dumps(data)
    first = _answer(native.prepare(data, canonical))
    assert first == _answer(python.prepare(data, canonical))
    # again, with the address's spellings (and whether it is writable) now remembered
    assert _answer(native.prepare(data, canonical)) == first


@pytest.mark.parametrize(
    "changes",
    [
        {"cookie_id": "ck-" + "7" * 300},  # longer than the scanner's value buffer
        {"page": "https://www.example.com/caf\u00e9"},  # not ASCII: declined
        {"page": 'https://www.example.com/"quoted"'},  # an escape: declined
        {"ip": "192.0.2." + "1" * 300},
    ],
)
def test_when_the_scanner_declines_an_event_then_python_answers_the_same(
    risk: SynthesisRisk, changes: dict[str, Any]
) -> None:
    base = {"page": "https://www.example.com/a", "properties": {"experiment": "b"}}
    data = event_dict(**{**base, **changes})
    canonical = orjson.dumps(data)
    native = ValueGuard(6, risk)
    assert _answer(native.prepare(data, canonical)) == _answer(
        ValueGuard(6, risk, native=False).prepare(data, canonical)
    )
    assert _scan(native, data) is None  # declined again, the address's forms known now


def _scan(value_guard: ValueGuard, data: dict[str, Any]) -> GuardedInput | int | None:
    """The C scanner's own answer for an event (no fallback)."""
    assert value_guard._scan_event is not None
    return value_guard._scan_event(orjson.dumps(data), data, value_guard)


def _marked(scanned: GuardedInput | int | None) -> bool:
    """Whether the scanner found an at-sign or an encoding mark (flags for a close look)."""
    assert scanned is not None
    return isinstance(scanned, int) and bool(scanned & guard._MARKS)


@pytest.mark.parametrize("name", LEGACY)
def test_every_legacy_reference_name_is_a_mark_in_any_case(name: str) -> None:
    value = "u-7f3a9c11"
    for spelled in (name, name.upper(), name.lower()):
        data = {"subject_id": value, "page": f"/a?b=1&{spelled}x=2"}
        assert _marked(_scan(ValueGuard(6), data)), spelled


@pytest.mark.parametrize(
    ("page", "mark"),
    [
        ("/a?b=1&sid=2", False),
        ("/a?b=1&ab;", True),
        ("/a?b=1&a;", False),  # one character: no name
        ("/a?b=1&" + "a" * 32 + ";", True),  # the longest name
        ("/a?b=1&" + "a" * 33 + ";", False),
        ("/a?&9;", False),
        ("/a?&#", True),
        ("/a?b&", False),
        ("/a?x&zz", False),
    ],
)
def test_an_ampersand_is_a_mark_when_it_starts_a_reference(page: str, mark: bool) -> None:
    data = {"subject_id": "u-7f3a9c11", "page": page}
    assert _marked(_scan(ValueGuard(6), data)) is mark


@pytest.mark.parametrize(
    ("ip", "elsewhere"),
    [
        ("192.0.2.77", "c000:24d"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("::FFFF:198.51.100.7", "c633:6407"),
        ("2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001"),
    ],
)
def test_when_another_spelling_of_the_address_is_in_the_text_then_it_is_looked_at(
    risk: SynthesisRisk, ip: str, elsewhere: str
) -> None:
    data = {"subject_id": "u-7f3a9c11", "ip": ip, "page": f"/a/{elsewhere}/b"}
    canonical = orjson.dumps(data)
    prepared = ValueGuard(6, risk).prepare(data, canonical)
    assert prepared.hits == {"page": {"ip": 1}}
    assert _answer(prepared) == _answer(ValueGuard(6, risk, native=False).prepare(data, canonical))


@pytest.mark.parametrize(("ip", "proven"), [("192.0.2.0", False), ("192.0.2.77", True)])
def test_when_an_operator_could_write_the_address_then_the_input_is_not_proven(
    risk: SynthesisRisk, ip: str, proven: bool
) -> None:
    data = {"subject_id": "u-7f3a9c11", "ip": ip, "page": "/a"}
    native = ValueGuard(6, risk)
    for _ in range(2):  # a new address, then a remembered one
        assert native.prepare(data, orjson.dumps(data)).proven is proven


def test_when_a_value_is_a_fixed_text_or_a_piece_of_one_then_it_is_writable(
    risk: SynthesisRisk,
) -> None:
    pieces = risk.scanner_parts()[2]
    longest = max(pieces, key=len)
    native = ValueGuard(6, risk)
    for value in (longest, longest[1:], longest[:-1], "chrome", "page_view", "ordinary-x7q"):
        scanned = _scan(native, {"subject_id": value, "page": "/a"})
        assert isinstance(scanned, GuardedInput)
        assert scanned.proven is (value not in pieces), value


def test_the_scanner_checks_its_arguments() -> None:
    assert guard._guardscan is not None
    scanner_type = guard._guardscan.Scanner
    tail = (ValueGuard._ip_forms, ValueGuard._ip_written, GuardedInput, {})
    with pytest.raises(TypeError):
        scanner_type(b"", "", "", {"a"}, True, (), "ip", {}, {}, *tail)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scanner_type(b"", "", "", frozenset(), True, (1,), "ip", {}, {}, *tail)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callables"):
        scanner_type(b"", "", "", frozenset(), True, (), "ip", {}, {}, 1, 2, GuardedInput, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callables"):
        scanner_type(b"", "", "", frozenset(), True, (), "ip", {}, {}, *tail[:2], dict, {})
    with pytest.raises(ValueError, match="names"):
        scanner_type(b"b\0a", "", "", frozenset(), True, (), "ip", {}, {}, *tail)
    value_guard = ValueGuard(6)
    scan = value_guard._scan_event
    assert scan is not None
    # other types are declined (None): the Python definition answers for them
    assert scan("text", {}, value_guard) is None  # type: ignore[arg-type]
    assert scan(bytearray(b"{}"), {}, value_guard) is None  # type: ignore[arg-type]
    assert scan(b"{}", [("subject_id", "x")], value_guard) is None
    with pytest.raises(TypeError):
        scan(b"{}", {})  # type: ignore[call-arg]
    output_clean = guard._guardscan.output_clean
    assert output_clean(b"x", ["a"], True) is None  # type: ignore[arg-type]
    assert output_clean(b"x", (1,), True) is None  # type: ignore[arg-type]
    assert output_clean(bytearray(b"x"), ("a",), True) is None  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        output_clean(b"x", ("a",))  # type: ignore[call-arg]
    # a Scanner whose __init__ never ran, or failed, scans nothing
    bare = scanner_type.__new__(scanner_type)
    with pytest.raises(RuntimeError, match="not initialised"):
        bare.scan_event(b"{}", {}, value_guard)
    failed = scanner_type.__new__(scanner_type)
    with pytest.raises(ValueError, match="at most 16"):
        failed.__init__(b"", "", "", frozenset(), True, ("f",) * 17, "ip", {}, {}, *tail)  # type: ignore[misc]
    with pytest.raises(RuntimeError, match="not initialised"):
        failed.scan_event(b"{}", {}, value_guard)


class _Sly(str):
    """A key that frees the event's values while the scanner looks another one up."""

    __slots__ = ()
    fields: dict[Any, Any] = {}  # noqa: RUF012 - the dict it empties
    junk: list[str] = []  # noqa: RUF012 - strings that take the freed values' memory

    def __hash__(self) -> int:
        return hash("device_id")

    def __eq__(self, other: object) -> bool:
        sizes = [len(v) for v in type(self).fields.values() if isinstance(v, str)]
        type(self).fields.clear()
        type(self).junk = ["".join(["z"] * size) for size in sizes for _ in range(64)]
        return False


def test_when_a_lookup_runs_code_that_empties_the_event_then_the_scan_still_holds_its_values(
    risk: SynthesisRisk,
) -> None:
    # not what the engine passes (orjson's keys are exact str), but the C must not read freed
    # memory: it holds its own references to the values it scans
    value = "".join(["u-", "7f3a9c11" * 3])  # made here: the dict holds the only reference
    fields: dict[Any, Any] = {"subject_id": value, _Sly("x"): 1}
    del value
    _Sly.fields = fields
    native = ValueGuard(6, risk)
    assert native._scan_event is not None
    scanned = native._scan_event(b'{"subject_id":"u-7f3a9c117f3a9c117f3a9c11"}', fields, native)
    assert not fields  # the key's __eq__ ran
    assert isinstance(scanned, GuardedInput)
    assert scanned.spellings == ("u-7f3a9c117f3a9c117f3a9c11",)


SPELLINGS = st.lists(
    st.sampled_from(["u-7f3a9c11", "192.0.2.77", "c000:24d", "é1", "ǆ", "x", ""])
    | st.text(alphabet="abc:.-", min_size=1, max_size=5),
    max_size=4,
).map(tuple)


@settings(max_examples=400, deadline=None)
@given(
    text=st.lists(FRAGMENTS | WORDS | SPELLINGS.map("".join).map(str.upper), max_size=8).map(
        "".join
    ),
    spellings=SPELLINGS,
    marks=st.booleans(),
)
def test_when_an_output_is_checked_then_c_and_python_answer_the_same(
    text: str, spellings: tuple[str, ...], marks: bool
) -> None:
    value = text.encode()
    expected = output_clean(fold(text), spellings, marks=marks)
    assert output_bytes_clean(value, spellings, marks=marks) == expected


class _Cautious(ValueGuard):
    """A guard that counts every address as one an operator could write."""

    def _ip_written(self, address: str, forms: tuple[str, ...]) -> bool:
        return True


def test_when_a_subclass_overrides_the_address_answers_then_the_scanner_asks_it(
    risk: SynthesisRisk,
) -> None:
    data = {"subject_id": "u-7f3a9c11", "ip": "192.0.2.77", "page": "/a"}
    canonical = orjson.dumps(data)
    assert ValueGuard(6, risk).prepare(data, canonical).proven
    assert not _Cautious(6, risk).prepare(data, canonical).proven
    assert not _Cautious(6, risk, native=False).prepare(data, canonical).proven


OCTETS = st.one_of(
    st.integers(0, 255).map(str),
    st.sampled_from(["0", "255", "00", "01", "256", "1a", "", " 1", "-1", "0x1"]),
)


@given(octets=st.lists(OCTETS, min_size=3, max_size=5))
def test_an_ipv4_address_is_read_in_c_as_python_reads_it(octets: list[str]) -> None:
    address = ".".join(octets)
    assert guard._guardscan is not None
    forms = guard._guardscan._ipv4_forms(address)
    # what the C reads is an IPv4 address exactly when Python's inet_pton reads one (other
    # text, holding addresses or not, is left to Python); then the same spellings and anchors
    bare = bool(guard._address_spellings(address))
    assert forms == (ValueGuard(6)._ip_forms(address) if bare else None)


def _risk_writing(engine: Engine, extra: Synthesis) -> SynthesisRisk:
    """The engine's syntheses (its address truncations among them) and one more."""
    return SynthesisRisk([*(s for plan in engine.plans for s in plan.syntheses), (extra, False)])


@pytest.mark.parametrize(
    "extra",
    [
        Synthesis(),
        Synthesis(alphabet="0123456789."),  # writes dotted digits whole
        Synthesis(alphabet="0123456789abcdef:"),  # writes the hex groups whole
        Synthesis(joiners="."),
        Synthesis(vocabulary=("build 192.0.2.77 of c633:6407",)),  # a fixed text holding them
    ],
)
@given(
    address=st.tuples(*[st.integers(0, 255)] * 4).map(lambda q: ".".join(map(str, q)))
    | st.tuples(*[st.integers(0, 0xFFFF)] * 3).map(lambda g: "2001:db8:{:x}::{:x}:{:X}".format(*g))
    | st.sampled_from(
        [
            "192.0.2.77",
            "198.51.100.7",
            "192.0.2.0",
            "0.0.0.1",
            "255.255.255.255",
            "2001:db8::42",
            "2001:db8::40",
            "::ffff:192.0.2.77",
            "::ffff:192.0.2.76",
            "203.0.113.9, 10.0.0.1",
            "[2001:db8::42]:443",
            "2001:db8::0x42",
        ]
    )
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
def test_when_an_address_is_proven_in_c_then_its_proof_is_python_s(
    engine: Engine, extra: Synthesis, address: str
) -> None:
    writing = _risk_writing(engine, extra)
    data = {"subject_id": "u-7f3a9c11", "ip": address, "page": "/a"}
    canonical = orjson.dumps(data)
    expected = _answer(ValueGuard(6, writing, native=False).prepare(data, canonical))
    assert _answer(ValueGuard(6, writing).prepare(data, canonical)) == expected


def test_when_the_scanner_is_bound_to_its_guard_then_it_prepares_as_prepare_does(
    risk: SynthesisRisk,
) -> None:
    """The engine's hot path calls the bound scanner (no Python frame): the same answers, the
    guard's last event kept for its audit records, every other case handed to Python."""
    events = [
        {"subject_id": "u-7f3a9c11", "ip": "192.0.2.77", "page": "/a"},  # the fast path
        {"subject_id": "u-7f3a9c11", "page": "/u-7f3a9c11"},  # a repeated value: a close look
        {"subject_id": "u-7f3a9c11", "page": "/caf\u00e9"},  # not ASCII: declined
        {"subject_id": "u-7f3a9c11", "feature": "pat@example.com"},  # an at-sign
    ]
    for data in events:
        canonical = orjson.dumps(data)
        value_guard = ValueGuard(6, risk)
        prepare = value_guard.preparer()
        assert prepare is not value_guard.prepare  # (the C scanner is built here)
        prepared = prepare(data, canonical)
        assert value_guard._latest == [prepared]
        expected = ValueGuard(6, risk, native=False).prepare(data, canonical)
        assert _answer(prepared) == _answer(expected)
        assert _answer(prepare(data, None)) == _answer(expected)  # (Python computes the JSON)
    assert guard._guardscan is not None
    scanner = ValueGuard(6, risk)._scanner
    with pytest.raises(TypeError, match="prepare"):
        scanner.bind(value_guard, ValueGuard._after_scan, [None])({})
    with pytest.raises(TypeError, match="after_scan"):
        scanner.bind(value_guard, 1, [None])
    with pytest.raises(TypeError, match="list of one"):
        scanner.bind(value_guard, ValueGuard._after_scan, [])
    latest: list[Any] = [None]
    bound = scanner.bind(value_guard, ValueGuard._after_scan, latest)
    latest.clear()  # (the guard never does this)
    with pytest.raises(RuntimeError, match="list of one"):
        bound(events[0], orjson.dumps(events[0]))


class _Counting(ValueGuard):
    """A guard that redefines `prepare`: the engine must call it."""

    calls = 0

    def prepare(self, fields: Any, canonical: bytes | None = None) -> GuardedInput:
        type(self).calls += 1
        return super().prepare(fields, canonical)


def test_when_a_subclass_redefines_prepare_then_the_preparer_is_prepare(
    risk: SynthesisRisk,
) -> None:
    _Counting.calls = 0
    value_guard = _Counting(6, risk)
    data = {"subject_id": "u-7f3a9c11", "page": "/a"}
    value_guard.preparer()(data, orjson.dumps(data))
    assert _Counting.calls == 1
    assert ValueGuard(6, risk, native=False).preparer() is not None


GROUPS = st.sampled_from([0, 0, 1, 0x10, 0x100, 0x1000, 0xFFFF]) | st.integers(0, 0xFFFF)


@given(
    groups=st.lists(GROUPS, min_size=8, max_size=8),
    lead=st.sampled_from([None, 0, 0x64, 0x2002, 0x2001]),
    spelling=st.sampled_from(["compressed", "exploded", "upper", "plain"]),
)
def test_an_ipv6_address_is_read_in_c_as_python_reads_it(
    groups: list[int], lead: int | None, spelling: str
) -> None:
    """Without an IPv4 address in it the C reads the address's forms itself (first sight,
    no Python call); with one (or any carrier's leading bytes) it leaves it to Python."""
    if lead is not None:
        groups[0] = lead
    address = ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))
    text = {
        "compressed": str(address),
        "exploded": address.exploded,
        "upper": address.exploded.upper(),
        "plain": ":".join(f"{g:x}" for g in groups),
    }[spelling]
    assert guard._guardscan is not None
    forms = guard._guardscan._ipv6_forms(text)
    # the carriers' leading bytes (a superset: gateway.ipforms) and ISATAP's identifiers
    may_carry = (
        groups[0] in (0, 0x64, 0x2002)
        or (groups[0] == 0x2001 and groups[1] == 0)
        or (groups[4] in (0, 0x200) and groups[5] == 0x5EFE)
    )
    assert (forms is None) is may_carry
    if forms is None:
        return
    assert not guard.embedded_ipv4s(text)
    assert forms == ValueGuard(6)._ip_forms(text)


# The scan counts every needle of an event (its values, the IP, the IP's anchors and other
# spellings) in one pass: each count must be bytes.count's, whatever the needles share (first
# bytes, nibbles, buckets), however many there are, and wherever they sit (both ends, across
# the vector blocks' edges, overlapping themselves).
NEEDLE_BYTES = st.sampled_from(b"ab:.0f\x1fq\xf0\x10")


@settings(max_examples=500, deadline=None)
@given(
    text=st.binary(max_size=140) | st.lists(NEEDLE_BYTES, max_size=140).map(bytes),
    needles=st.lists(st.lists(NEEDLE_BYTES, min_size=1, max_size=7).map(bytes), max_size=40),
    planted=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 140)), max_size=6),
)
def test_when_many_needles_are_counted_at_once_each_count_is_bytes_count(
    text: bytes, needles: list[bytes], planted: list[tuple[int, int]]
) -> None:
    for index, at in planted:  # occurrences where the needle surely is
        if needles:
            needle = needles[index % len(needles)]
            text = text[:at] + needle + text[at:]
    assert guard._guardscan is not None
    counts = guard._guardscan._count_many(text, tuple(needles))
    assert counts == tuple(text.count(needle) for needle in needles)


@pytest.mark.parametrize("length", [31, 32, 33, 34, 35, 63, 64, 65, 66, 67, 480])
def test_when_a_needle_ends_the_text_or_a_block_then_it_is_counted(length: int) -> None:
    text = bytes((97 + i % 7) for i in range(length))
    needles = tuple({text[at : at + size] for size in (3, 4, 9) for at in range(0, length, 5)})
    assert guard._guardscan is not None
    counts = guard._guardscan._count_many(text, needles)
    assert counts == tuple(text.count(needle) for needle in needles)
    run = b"a" * 39  # occurrences overlap: counted as bytes.count counts them
    assert guard._guardscan._count_many(run, (b"aaa", b"aa")) == (13, 19)


def _inet_pton4(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):  # (ValueError: an embedded NUL)
        return False
    return True


@settings(max_examples=2000, deadline=None)
@given(
    text=st.text(alphabet="0123456789.x \x00", max_size=17)
    | st.lists(OCTETS, min_size=2, max_size=5).map(".".join)
    | st.lists(OCTETS, min_size=4, max_size=4).map(lambda octets: ".".join(octets) + ".")
)
def test_a_text_is_an_ipv4_address_in_c_exactly_when_inet_pton_reads_one(text: str) -> None:
    assert guard._guardscan is not None
    assert (guard._guardscan._ipv4_forms(text) is not None) == _inet_pton4(text)
