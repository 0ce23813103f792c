"""The value guard's and the output records' less travelled paths, with exact values."""

from __future__ import annotations

import orjson
import pytest

from gateway import guard
from gateway.decision import Verdict
from gateway.engine import Engine
from gateway.events import Event, EventKind, parse_event
from gateway.guard import Scrub, ValueGuard, has_at_sign, ip_spellings, output_clean
from gateway.ipforms import embedded_ipv4s
from gateway.records import HEADER_KEY_ID, Output, OutputRecords, Source
from tests.unit.helpers import ALL_GRANTED, consent_state

ADULT = consent_state(ALL_GRANTED, under_13=False, parental=False)


def _event(**fields: object) -> Event:
    data = {
        "event_id": "evt-1",
        "subject_id": "user-7f3a9c11",
        "occurred_at": "2026-11-26T12:34:56Z",
        "event_type": "page_view",
        **fields,
    }
    parsed = parse_event(orjson.dumps(data), str(data["subject_id"]).encode(), EventKind.USAGE,
                         max_bytes=65536)  # fmt: skip
    assert isinstance(parsed, Event)
    return parsed


@pytest.mark.parametrize(
    ("identifier", "value", "token"),
    [
        ("subject_id", "user-7f3a9c11", "[subject_id]"),
        ("subject_id", "subject", "[id]"),  # the value is inside its own token
        ("subject_id", "id]", "[]"),
        ("subject_id", "]", ""),
    ],
)
def test_when_the_value_is_inside_its_token_then_another_token_is_used(
    identifier: str, value: str, token: str
) -> None:
    assert guard._token_for(identifier, value) == token


def test_when_an_ids_lower_case_changes_its_length_then_a_pattern_replaces_it() -> None:
    # "İ" (U+0130) lower-cases to two characters: index arithmetic would go wrong
    needles = ValueGuard(6).needles({"subject_id": "abcdef"})
    text, n = guard._replace("İ ABCDEF x abcdef", needles[0])
    assert (text, n) == ("İ [subject_id] x [subject_id]", 2)


def test_when_scrubbed_keys_collide_then_both_entries_are_kept() -> None:
    needles = ValueGuard(6).needles({"subject_id": "user-7f3a9c11"})
    hits = guard._Hits()
    value = {"user-7f3a9c11": 1, "[subject_id]": 2}
    assert guard.scrub_value(value, needles, hits, names=True) == {
        "[subject_id]": 1,
        "[subject_id]_": 2,
    }


def test_when_a_number_spells_an_id_then_it_becomes_the_token() -> None:
    needles = ValueGuard(6).needles({"subject_id": "12345678"})
    hits = guard._Hits()
    assert guard.scrub_value([12345678, 1.5, True, None], needles, hits, names=True) == [
        "[subject_id]",
        1.5,
        True,
        None,
    ]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("pat@example.com", True),
        ("pat%40example.com", True),
        ("pat%2540example.com", True),
        ("pat&#64;example.com", True),
        ("pat&commat;example.com", True),
        ("pat\uff20example.com", True),
        ("pat\ufe6bexample.com", True),
        ("100% & more é", False),
    ],
)
def test_when_an_at_sign_is_spelled_any_way_then_it_is_seen(text: str, found: bool) -> None:
    assert has_at_sign(text) is found
    assert output_clean(text, ()) is not found


def test_when_caches_fill_up_then_they_are_cleared_and_still_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(guard, "_NEEDLE_CACHE_SIZE", 2)
    value_guard = ValueGuard(6)
    for n in range(5):
        needles = value_guard.needles({"subject_id": f"user-{n:08d}", "ip": f"192.0.2.{n + 1}"})
        assert {needle.text for needle in needles} >= {f"user-{n:08d}", f"192.0.2.{n + 1}"}
        assert len(value_guard._cache) <= 2 and len(value_guard._ip_cache) <= 2


def test_when_shown_then_guard_objects_hold_no_value() -> None:
    value_guard = ValueGuard(8)
    prepared = value_guard.prepare({"subject_id": "user-7f3a9c11", "page": "/u/user-7f3a9c11"})
    assert repr(value_guard) == "ValueGuard(min_length=8)"
    assert repr(prepared) == "GuardedInput(values=1, fields_hit=1)"
    with pytest.raises(ValueError, match="min_length"):
        ValueGuard(0)


def test_when_an_address_is_not_ip_then_it_has_no_other_spellings() -> None:
    assert ip_spellings("not an address") == ()
    assert embedded_ipv4s("192.0.2.1") == ()
    # its hex groups, and as Teredo writes a client: inverted, hex and dotted; then the
    # address as one number (decimal, hex padded to 8 digits, and unpadded where shorter,
    # octal without its leading zero)
    assert ip_spellings("192.0.2.77") == (
        "c000:24d", "3fff:fdb2", "63.255.253.178", "3221226061", "c000024d", "30000001115",
    )  # fmt: skip
    assert ip_spellings("192.0.0.0") == (
        "c000:0", "3fff:ffff", "63.255.255.255", "c000::", "3221225472", "c0000000",
        "30000000000",
    )  # fmt: skip
    assert ip_spellings("10.0.0.1")[-4:] == ("167772161", "0a000001", "a000001", "1200000001")
    assert ip_spellings("0.1.2.3") == ("1:203", "fffe:fdfc", "255.254.253.252")  # no number


def test_when_a_pseudonym_holds_a_value_by_chance_then_the_record_goes_unkeyed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only a value made of hex digits can be inside a (hex) pseudonym, so only such a value
    # makes the guard check the key (gateway.guard.SynthesisRisk)
    plan = next(p for p in engine.plans if p.keyed)
    monkeypatch.setattr(plan, "subject_pseudonym_out", False)
    monkeypatch.setattr(plan, "pseudonymize", lambda subject: "00" + subject.upper())
    event = _event(subject_id="deadbeef7f3a9c11")
    decision = next(d for d in engine.decide(event, ADULT) if d.sink == plan.name)
    assert decision.verdict is Verdict.FORWARD
    assert decision.key is None
    assert Scrub("key", "subject_id", 1) in decision.scrubbed


def test_when_records_are_shown_then_no_key_or_value_appears(engine: Engine) -> None:
    records: OutputRecords = engine.records
    assert repr(records) == f"OutputRecords(config_version={engine.version!r})"
    output = Output("sink.x", b"user-7f3a9c11", b'{"ip": "192.0.2.77"}', [("h", b"v")])
    assert repr(output) == "Output(topic='sink.x', headers=['h'])"


def test_when_two_records_share_a_key_id_then_the_header_is_built_once(engine: Engine) -> None:
    forwards = [d for d in engine.decide(_event(), ADULT) if d.key_id is not None]
    consent = OutputRecords.consent_header(None)
    first = engine.records.sink(forwards[0], _event(), consent)
    second = engine.records.sink(forwards[0], _event(event_id="evt-2"), consent)
    key_id = forwards[0].key_id
    assert key_id is not None
    first_header = next(h for h in first.headers if h[0] == HEADER_KEY_ID)
    second_header = next(h for h in second.headers if h[0] == HEADER_KEY_ID)
    assert first_header == (HEADER_KEY_ID, key_id.encode())
    assert first_header is second_header
    audit = engine.records.audit(_event(), forwards[0], Source("t", 1, 2), None)
    assert dict(audit.headers)["gateway-consent-version"] == b"none"


@pytest.mark.parametrize(
    ("changes", "canary"),
    [
        # found by a reviewer: `İ` lower-cases to two characters (`i` and a combining dot), and
        # the case-insensitive regex of the folded value never matched the `İ` itself
        (
            {"cookie_id": "ck-İnfo-1234", "page": "https://www.example.com/ck-İnfo-1234/x"},
            "ck-İnfo-1234",
        ),
        (
            {"subject_id": "USER-İSTANBUL-42", "page": "https://www.example.com/USER-İSTANBUL-42"},
            "İSTANBUL-42",
        ),
        ({"device_id": "dİ", "feature": "dİ"}, "dİ"),  # a short value, as a whole token
        # a value whose folded form is longer than itself, next to one that is not
        ({"cookie_id": "İİ-ck-İİ", "feature": "x İİ-ck-İİ İİ-CK-İİ y"}, "İİ-ck-İİ"),
    ],
)
def test_when_a_value_folds_to_more_characters_then_it_is_still_replaced(
    engine: Engine, changes: dict[str, str], canary: str
) -> None:
    data = {**_plain_event(), **changes}
    event = parse_event(orjson.dumps(data), data["subject_id"].encode(), EventKind.USAGE,
                        max_bytes=65536)  # fmt: skip
    assert isinstance(event, Event)
    decisions = engine.decide(event, consent_state(ALL_GRANTED))
    forwarded = [d for d in decisions if d.verdict is Verdict.FORWARD]
    assert forwarded
    for decision in forwarded:
        assert decision.value is not None
        text = decision.value.decode()
        assert canary not in text and canary.lower() not in text, decision.sink
        assert canary.upper() not in text, decision.sink


def _plain_event() -> dict[str, object]:
    return {
        "event_id": "evt-1",
        "subject_id": "subj-7f3a9c11",
        "occurred_at": "2026-11-26T12:34:56.789Z",
        "event_type": "page_view",
        "page": "https://www.example.com/products",
        "ip": "192.0.2.77",
        "device_id": "dev-91x2q7",
        "cookie_id": "ck-0a1b2c3x",
        "device_type": "desktop",
        "feature": "chat",
    }


@pytest.mark.parametrize(
    ("text", "value", "whole_token", "expected"),
    [
        ("a İnfo b", "info", False, "a [x] b"),
        ("aİnfob", "info", True, "aİnfob"),  # inside a word: not a whole token
        ("İ İ", "i", True, "[x] [x]"),
        ("xİİx", "ii", False, "x[x]x"),
        ("plain text", "text", False, "plain [x]"),
        ("ΣΑΣ σας", "σασ", False, "[x] [x]"),  # both sigmas fold to one
        ("a STRASSE b", "Straße", False, "a [x] b"),
        ("a Straße b", "STRASSE", False, "a [x] b"),
        ("xßx", "s", False, "x[x]x"),  # a match inside a character takes all of it
        ("İSTANBUL-KULLANICI", "İstanbul-Kullanıcı", False, "[x]"),
        ("ıİ\u0307i", "iii", False, "[x]"),  # dotless, dotted, a lone dot above: all i
        ("ß\u0307abc", "ssabc", False, "[x]"),  # one dropped, one doubled: same length
    ],
)
def test_spans_map_folded_matches_back_to_whole_characters(
    text: str, value: str, whole_token: bool, expected: str
) -> None:
    folded = guard.fold(value)
    needle = guard.Needle("x", folded, (folded,), whole_token, "[x]", False)
    assert guard._replace(text, needle)[0] == expected
