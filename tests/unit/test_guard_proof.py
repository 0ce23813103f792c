"""The value guard's proof: outputs of a proven input are not checked, and need not be.

`GuardedInput.proven` skips the output check when every identifier value occurs only in its own
field and none is text an operator could write (`gateway.guard.SynthesisRisk`). The property
below is the proof's test: with and without it, every decision is the same, byte for byte, for
events whose identifiers are chosen to be what operators write (digits, hex, dotted and colon
forms, placeholders, browser families, URL joiners) as well as ordinary ones.
"""

from __future__ import annotations

import html
import html.entities
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import GatewayConfig
from gateway.decision import SinkDecision
from gateway.engine import Engine
from gateway.events import Event, EventKind, parse_event
from gateway.guard import SynthesisRisk, ValueGuard, _may_hide_spelling, fold
from gateway.keys import Keyring
from gateway.operators import OPERATOR_CLASSES, OPERATORS, OperatorTools
from gateway.operators.base import OPAQUE, Synthesis
from gateway.operators.ip_truncate import IpTruncate, IpTruncateConfig
from tests.unit.helpers import ALL_GRANTED, UA_CHROME, consent_state, event_dict, make_event

STATES = [
    consent_state(ALL_GRANTED, under_13=False, parental=False),
    consent_state(ALL_GRANTED, under_13=True, parental=True),
    consent_state({"analytics": True, "advertising": True}, under_13=False),
    None,
]
# Values operators write, or pieces of them, and ordinary identifiers.
WRITTEN = [
    "192.0.2.0",
    "198.51.100.0",
    "2001:db8::",
    "0123456789",
    "12345",
    "deadbeefcafe",
    "0a1b2c3d4e5f",
    ":id",
    "id/settings",
    "a=b&c",
    "chrome",
    "Chrome Mobile",
    "Windows",
    "other",
    "page_view",
    "k1-analytics",
    "browser",
    "major",
]
ORDINARY = ["u-7f3a9c11", "ck-0a1b2c3x", "dev-91x2", "ad-77ab-x1", "visitor_42q"]
IDS = st.sampled_from(WRITTEN + ORDINARY) | st.text(
    alphabet="abcdef0123456789.:-/=&?", min_size=3, max_size=14
)


def _unproven(config: GatewayConfig, keyring: Keyring) -> Engine:
    """The same engine with the proof off: every output is checked by value."""
    engine = Engine(config, keyring)
    engine.guard = ValueGuard(config.settings.identifier_min_length)
    return engine


def _shape(decision: SinkDecision) -> tuple[Any, ...]:
    return (decision.verdict, decision.reason, decision.value, decision.key, decision.scrubbed)


@pytest.fixture(scope="module")
def unproven(config: GatewayConfig, keyring: Keyring) -> Engine:
    return _unproven(config, keyring)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(IDS, min_size=4, max_size=4, unique_by=str.lower))
    octet = draw(st.sampled_from([0, 7, 77, 255]))
    ip = draw(st.sampled_from([f"192.0.2.{octet}", f"::ffff:198.51.100.{octet}", "2001:db8::1"]))
    page = draw(st.sampled_from(["/account/12345678/settings", "/", "/products/term-life"]))
    return event_dict(
        subject_id=ids[0],
        device_id=ids[1],
        cookie_id=ids[2],
        advertising_id=ids[3],
        ip=ip,
        page=f"https://www.example.com{page}?utm_source=mail&utm_campaign=spring",
        user_agent=UA_CHROME,
        properties={"experiment": "hero", "variant": {"nested": ["b", 12345]}},
    )


def _clean(**changes: str) -> Event:
    """An event with no at-sign or encoding mark, its identifiers ordinary unless changed."""
    fields = {
        "subject_id": "u-7f3a9c11",
        "ip": "192.0.2.77",
        "device_id": "dev-91x2",
        "cookie_id": "ck-0a1b2c3x",
        "pixel_id": "px-5q6r7s",
        "advertising_id": "ad-77ab-x1",
        "page": "https://www.example.com/products?utm_source=mail",
        "properties": {"experiment": "hero"},
    }
    return make_event(**{**fields, **changes})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=events(), state=st.sampled_from(STATES), device=st.booleans())
def test_when_the_proof_skips_output_checks_then_every_decision_is_the_same(
    engine: Engine, unproven: Engine, data: dict[str, Any], state: int | None, device: bool
) -> None:
    kind = EventKind.DEVICE if device else EventKind.USAGE
    event = parse_event(orjson.dumps(data), data["subject_id"].encode(), kind, max_bytes=65536)
    assert isinstance(event, Event), event
    proven = [_shape(d) for d in engine.decide(event, state)]
    checked = [_shape(d) for d in unproven.decide(event, state)]
    assert proven == checked


def test_when_a_subject_id_is_its_events_network_prefix_then_the_output_is_checked(
    engine: Engine,
) -> None:
    event = _clean(subject_id="192.0.2.0")
    state = consent_state(ALL_GRANTED, under_13=False, parental=False)
    guarded = engine.guard.prepare(event.fields, event.canonical)  # type: ignore[union-attr]
    assert not guarded.proven
    analytics = next(d for d in engine.decide(event, state) if d.sink == "analytics")
    assert analytics.value is not None
    assert b"192.0.2.0" not in analytics.value
    assert orjson.loads(analytics.value)["ip"] == "[subject_id]"


def test_when_identifiers_are_ordinary_and_only_in_their_fields_then_the_input_is_proven(
    engine: Engine,
) -> None:
    event = _clean()
    guarded = engine.guard.prepare(event.fields, event.canonical)  # type: ignore[union-attr]
    assert guarded.proven
    assert guarded.marks_free


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"page": "https://www.example.com/u-7f3a9c11/x"}, "a value outside its field"),
        ({"page": "https://www.example.com/a%40b"}, "an encoding mark"),
        ({"subject_id": "deadbeefcafe"}, "hex: a pseudonym could hold it"),
        ({"subject_id": "12345678"}, "digits: a major version could be it"),
        ({"subject_id": "chrome"}, "a browser family"),
        ({"subject_id": "u/7f3a9c11"}, "a joiner of url_clean"),
        ({"ip": "10.0.0.0"}, "an address that is its own network prefix"),
    ],
)
def test_when_an_input_is_not_proven_then_the_reason_is_one_the_proof_names(
    engine: Engine, changes: dict[str, str], why: str
) -> None:
    event = _clean(**changes)
    guarded = engine.guard.prepare(event.fields, event.canonical)  # type: ignore[union-attr]
    assert not guarded.proven, why


def test_synthesis_risk_names_what_operators_write() -> None:
    truncate = IpTruncate(IpTruncateConfig(op="ip_truncate"), _tools())
    risk = SynthesisRisk(
        [
            (Synthesis(joiners="/?&=", vocabulary=(":id",)), False),
            (Synthesis(alphabet="0123456789abcdef"), False),
            (truncate.synthesis(), True),
        ],
        vocabulary=["Chrome Mobile"],
    )
    assert risk.writable("a/b")
    assert risk.writable("id")  # inside a placeholder
    assert risk.writable("rome mob")  # inside a fixed text, any case
    assert risk.writable("deadbeef")
    assert risk.writable("10.0.0.0")  # a network prefix could be it
    assert not risk.writable("u-7f3a9c11")
    assert not risk.writable("ck-0a1b2c3x")
    assert risk.ip_writable("10.0.0.0", ["10.0.0.0"])  # /24 of itself
    assert not risk.ip_writable("192.0.2.77", ["192.0.2.77", "c000:24d"])
    assert risk.ip_writable("not an address", ["not an address"]) is False
    assert "pieces=" in repr(risk)


def _tools() -> OperatorTools:
    return OperatorTools(lambda value: "0" * 32, "k1", lambda: lambda ua: (None, None, None))


def test_every_shipped_operator_declares_what_it_writes() -> None:
    # An operator that does not declare is OPAQUE (every output of its sink is checked); the
    # shipped ones all declare, so the default sinks run the fast path.
    undeclared = [cls.name for cls in OPERATOR_CLASSES if "synthesis" not in cls.__dict__]
    assert undeclared == []


def test_when_a_prefix_keeps_the_whole_address_then_the_operator_is_opaque() -> None:
    whole = IpTruncate(IpTruncateConfig(op="ip_truncate", ipv4_prefix=32), _tools())
    assert whole.synthesis() is OPAQUE


def test_when_the_user_agent_parser_publishes_no_families_then_it_is_opaque() -> None:
    user_agent = OPERATORS["user_agent"]
    assert user_agent(user_agent.config_model(op="user_agent"), _tools()).synthesis() is OPAQUE


def test_when_every_sink_checks_its_outputs_then_a_proven_input_changes_nothing(
    engine: Engine,
) -> None:
    for plan in engine.plans:
        assert not plan.checks_outputs, plan.name  # the shipped sinks all run the fast path


STATE = consent_state(ALL_GRANTED, under_13=False, parental=False)


@pytest.mark.parametrize(
    ("changes", "hidden"),
    [
        # HTML's legacy references decode without a `;` (found by a reviewer of the proof)
        (
            {"cookie_id": "<ck>91x2q", "page": "https://www.example.com/&ltck&gt91x2q"},
            "&ltck&gt91x2q",
        ),
        (
            {
                "cookie_id": "jos\u00e9-cookie-1",
                "page": "https://www.example.com/jos&eacute-cookie-1/x",
            },
            "jos&eacute-cookie-1",
        ),
        # str.lower writes a capital sigma as final or medial by context
        (
            {"subject_id": "NIKOLAO\u03a3", "page": "https://www.example.com/NIKOLAO\u03a3.html"},
            "NIKOLAO",
        ),
    ],
)
def test_when_an_identifier_hides_in_a_spelling_then_it_leaves_by_no_path(
    engine: Engine, unproven: Engine, changes: dict[str, str], hidden: str
) -> None:
    for trigger in ({}, {"device_id": "00Z"}, {"device_id": "key_id"}):
        event = _clean(**changes, **trigger)
        proven = engine.decide(event, STATE)
        assert [_shape(d) for d in proven] == [_shape(d) for d in unproven.decide(event, STATE)]
        for decision in proven:
            assert decision.value is not None
            assert hidden.lower() not in decision.value.decode().lower(), decision.sink


def test_when_a_number_equals_an_identifier_then_both_paths_agree(
    engine: Engine, unproven: Engine
) -> None:
    event = _clean(advertising_id="1.5e-5", device_id="key_id", properties={"experiment": 1.5e-5})
    assert [_shape(d) for d in engine.decide(event, STATE)] == [
        _shape(d) for d in unproven.decide(event, STATE)
    ]


@pytest.mark.parametrize(
    ("address", "written"),
    [
        ("192.0.2.77", False),  # odd host part: no prefix keeps it whole
        ("192.0.2.76", False),  # divisible by 4: truncated, and /24 gives 192.0.2.0
        ("192.0.2.0", True),  # its own network prefix
        ("::ffff:198.51.100.0", True),
        ("2001:db8::1", False),
        ("2001:db8::", True),
        ("not an address", False),
    ],
)
def test_an_address_is_writable_only_when_its_network_prefix_spells_it(
    engine: Engine, address: str, written: bool
) -> None:
    risk = engine.guard._risk  # type: ignore[union-attr]
    assert risk is not None
    assert risk.ip_writable(address, [address.lower()]) is written


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["deadbeef", "a/b", "id", "10.0.0.0", "rome mob", "u-7f3a9c11"]),
            st.text(alphabet="0123456789abcdefu-/?&=:. ", min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_all_values_at_once_are_writable_exactly_when_one_of_them_is(values: list[str]) -> None:
    # `any_writable` tests an event's values in one search each; `writable`, one value
    risk = SynthesisRisk(
        [
            (Synthesis(joiners="/?&=", vocabulary=(":id",)), False),
            (Synthesis(alphabet="0123456789abcdef"), False),
            (IpTruncate(IpTruncateConfig(op="ip_truncate"), _tools()).synthesis(), True),
        ],
        vocabulary=["Chrome Mobile"],
    )
    expected = any(
        "/" in v or "?" in v or "&" in v or "=" in v  # a joiner
        or not v.strip("0123456789abcdef.:")  # made of an alphabet (digits, hex, prefixes)
        or v in ":id" or v in "chrome mobile"  # inside a fixed text
        for v in values
    )  # fmt: skip
    assert risk.any_writable(values, "\0".join(values)) is expected
    assert [risk.writable(v) for v in values] == [risk.any_writable([v], v) for v in values]


def _decoded_by_html(text: str) -> bool:
    return html.unescape(text) != text


@pytest.mark.parametrize("case", ["lower", "upper", "title", "as is"])
def test_every_legacy_html_reference_in_any_case_is_an_encoding_mark(case: str) -> None:
    # The guard matches references on lower-cased text with a trie of the lower-cased names;
    # every name HTML decodes without a `;`, written in any case, must still be a mark.
    for name in html.entities.html5:
        if name.endswith(";"):
            continue
        written = {"lower": name.lower(), "upper": name.upper(), "title": name.title()}.get(
            case, name
        )
        text = f'{{"page":"/jos&{written}x-cookie"}}'
        if case == "as is":
            assert _decoded_by_html(text), name
        assert _may_hide_spelling(fold(text)), (name, case)
    # ordinary query strings are not marks: neither `&session=` nor `&utm_source=`
    assert not _may_hide_spelling('{"page":"/a?b=1&session=2&utm_source=x&q=y"}')
    assert _may_hide_spelling('{"page":"/a?b=1&section=2"}')  # `&sect` decodes: a mark
    assert _may_hide_spelling('{"page":"/a?&notequal;"}')  # a named reference with `;`
