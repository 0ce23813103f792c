"""Properties over generated events and consent: no leak, fail closed, children, determinism."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import GatewayConfig
from gateway.consent_state import PURPOSES, ConsentState
from gateway.decision import Verdict
from gateway.engine import Engine
from gateway.events import Event, EventKind, parse_event
from gateway.operators.ip_truncate import IpTruncate, IpTruncateConfig
from tests.unit.helpers import UA_CHROME

SETTINGS = settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
hexes = st.text("0123456789abcdef", min_size=6, max_size=10)
ipv4 = st.integers(1, 254).map(lambda n: f"192.0.2.{n}")
ipv6 = st.tuples(st.integers(1, 0xFFFF), st.integers(1, 0xFFFF)).map(
    lambda p: f"2001:db8:{p[0]:x}:{p[1]:x}::{p[0]:x}"
)
emails = hexes.map(lambda h: f"canary.{h}@mail-{h}.invalid")
pages = st.sampled_from(
    [
        "https://www.example.com/u/{e}/x",
        "https://{e}@www.example.com/x",
        "https://www.example.com/x?email={e}&utm_source=mail",
        "https://www.example.com/x?utm_source={e}",
        "https://www.example.com/x#{e}",
        "https://www.example.com/{q}",
    ]
)
tri = st.sampled_from([True, False, None])


@st.composite
def events(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    email = draw(emails)
    template = draw(pages)
    page = template.format(e=email, q=email.replace("@", draw(st.sampled_from(["%40", "%2540"]))))
    data: dict[str, Any] = {
        "event_id": f"EVT{draw(st.text('GHIJKLMNOP', min_size=6, max_size=10))}",
        "subject_id": f"canary-subj-{draw(hexes)}",
        "occurred_at": "2026-11-26T12:34:56Z",
        "event_type": draw(st.sampled_from(["page_view", "feature_use", "device_seen"])),
        "ip": draw(ipv4 | ipv6),
        "device_id": f"canary-dev-{draw(hexes)}",
        "cookie_id": f"canary-ck-{draw(hexes)}",
        "pixel_id": f"canary-px-{draw(hexes)}",
        "advertising_id": f"canary-ad-{draw(hexes)}",
        "page": page,
        "referrer": page,
        "user_agent": UA_CHROME,
        "gpc": draw(st.booleans()),
        "dnt": draw(st.booleans()),
        "properties": {"experiment": "hero", "email": email},
    }
    return data, email


@st.composite
def consents(draw: st.DrawFn) -> int | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    purposes = {name: draw(tri) for name in PURPOSES}
    return ConsentState.pack(1, purposes, draw(tri), draw(tri))


def _parse(data: dict[str, Any], kind: EventKind) -> Event:
    event = parse_event(orjson.dumps(data), data["subject_id"].encode(), kind, max_bytes=65536)
    assert isinstance(event, Event)
    return event


def _pieces(text: str) -> set[str]:
    return {text[i : i + 8] for i in range(len(text) - 7)}


IDENTIFIERS = ("subject_id", "device_id", "cookie_id", "pixel_id", "advertising_id")
TRUNCATE = IpTruncate(IpTruncateConfig(op="ip_truncate"), None)  # type: ignore[arg-type]


@SETTINGS
@given(events(), consents(), st.sampled_from(list(EventKind)))
def test_when_forwarded_then_no_raw_identifier_nor_piece_of_one_appears(
    engine: Engine, generated: tuple[dict[str, Any], str], state: int | None, kind: EventKind
) -> None:
    data, email = generated
    for decision in engine.decide(_parse(data, kind), state):
        if decision.value is None:
            continue
        out = decision.value.decode() + (decision.key or b"").decode()
        for name in IDENTIFIERS:
            assert not any(piece in out for piece in _pieces(data[name])), (name, out)
        assert data["ip"] not in out
        network = TRUNCATE.apply(data["ip"])
        assert not any(p in out for p in _pieces(data["ip"]) - _pieces(network))
        assert email not in out
        assert not any(piece in out for piece in _pieces(email.split("@")[0]))


REQUIRED = {"ads": ("advertising",), "analytics": ("analytics",)}
REQUIRED["social"] = ("social", "third_party_sharing")


@SETTINGS
@given(events(), consents())
def test_when_required_purposes_are_not_granted_then_nothing_reaches_the_sink(
    engine: Engine, generated: tuple[dict[str, Any], str], state: int | None
) -> None:
    data, _ = generated
    for decision in engine.decide(_parse(data, EventKind.USAGE), state):
        if decision.verdict is Verdict.FORWARD:
            assert state is not None
            for purpose in REQUIRED[decision.sink]:
                shift = 2 * PURPOSES.index(purpose)
                assert (state >> shift) & 3 == 1
                if data["gpc"] and purpose in ("advertising", "third_party_sharing"):
                    raise AssertionError("GPC withdrew a required purpose")


@SETTINGS
@given(events(), consents(), st.sampled_from(list(EventKind)))
def test_when_child_lacks_parental_consent_then_no_ads_social_key_or_pseudonym(
    engine: Engine, generated: tuple[dict[str, Any], str], state: int | None, kind: EventKind
) -> None:
    data, _ = generated
    state = (state or 0) & ~(0b1111 << 10) | (1 << 10) | (2 << 12)  # under 13, no parental
    for decision in engine.decide(_parse(data, kind), state):
        if decision.sink in ("ads", "social"):
            assert decision.verdict is Verdict.DROP
        assert decision.key is None
        assert decision.key_id is None
        if decision.output is not None:
            assert not set(decision.output) & {*IDENTIFIERS, "ip", "properties"}


@SETTINGS
@given(events(), consents())
def test_when_same_input_and_keys_then_same_output(
    engine: Engine, config: GatewayConfig, generated: tuple[dict[str, Any], str], state: int | None
) -> None:
    data, _ = generated
    first = engine.decide(_parse(data, EventKind.USAGE), state)
    again = engine.decide(_parse(data, EventKind.USAGE), state)
    assert first == again


@SETTINGS
@given(hexes)
def test_when_one_identifier_goes_to_several_sinks_then_pseudonyms_differ(
    engine: Engine, suffix: str
) -> None:
    data = {
        "event_id": "e",
        "subject_id": f"canary-subj-{suffix}",
        "occurred_at": "2026-11-26T12:34:56Z",
        "event_type": "page_view",
    }
    state = ConsentState.pack(1, dict.fromkeys(PURPOSES, True), False, None)
    keys = [d.key for d in engine.decide(_parse(data, EventKind.USAGE), state)]
    assert None not in keys
    assert len(set(keys)) == len(keys) == 3
