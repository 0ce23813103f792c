"""Property: identifiers planted anywhere in an event never leave raw, nor any 8-character piece.

Identifiers are random strings that contain URL and text delimiters (`/ ? # & = ; % + : .`,
spaces), so an operator that cuts text at a delimiter would leave pieces behind if the guard
only looked for whole values after the operators ran. Every fourth character is one of `QZJK`,
which no fixed text of an output holds (field names, tokens, pseudonyms and timestamps are
lowercase, hex or digits), so a piece found in an output can only have come from the event.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.decision import Verdict
from gateway.engine import Engine
from gateway.events import Event, EventKind, parse_event
from tests.unit.helpers import ALL_GRANTED, UA_CHROME, consent_state

PIECE = 8
_MARKS = "QZJK"
_OTHERS = "QZJK0123456789/?#&=;%+:.-_~ İΣ"  # İ and Σ fold to other lengths, by context
FILLER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-/", max_size=12)
STATES = [
    consent_state(ALL_GRANTED, under_13=False, parental=False),
    consent_state(ALL_GRANTED, under_13=True, parental=False),
    consent_state(ALL_GRANTED, under_13=True, parental=True),
    consent_state({"analytics": True, "advertising": True}, under_13=False),
    None,
]


@st.composite
def identifiers(draw: st.DrawFn) -> str:
    length = draw(st.integers(min_value=PIECE, max_value=24))
    chars = [
        draw(st.sampled_from(_MARKS if index % 4 == 0 else _OTHERS)) for index in range(length)
    ]
    return "".join(chars)


@st.composite
def planted_events(draw: st.DrawFn) -> tuple[dict[str, Any], list[str], str]:
    ids = draw(st.lists(identifiers(), min_size=4, max_size=4, unique=True))
    subject, device, cookie, advertising = ids
    ip = f"198.51.100.{draw(st.integers(min_value=10, max_value=254))}"
    values = [*ids, ip]

    def slot() -> str:
        if draw(st.booleans()):
            return draw(FILLER) + draw(st.sampled_from(values)) + draw(FILLER)
        return draw(FILLER)

    page = f"https://www.example.com/{slot()}/{slot()}?utm_campaign={slot()}&q={slot()}#{slot()}"
    event = {
        "event_id": "evt-" + slot(),
        "subject_id": subject,
        "occurred_at": "2026-11-26T12:34:56Z",
        "event_type": "page_view",
        "page": page,
        "referrer": f"https://search.example.com/{slot()}?q={slot()}",
        "user_agent": UA_CHROME,
        "ip": ip,
        "device_id": device,
        "cookie_id": cookie,
        "advertising_id": advertising,
        "device_type": slot(),
        "os": slot(),
        "browser": slot(),
        "feature": slot(),
        "app_version": slot(),
        "properties": {
            "experiment": slot(),
            "variant": {"nested": [slot(), {"deeper": slot()}]},
            "other": slot(),
        },
    }
    return event, ids, ip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted=planted_events(), state=st.sampled_from(STATES), device=st.booleans())
def test_when_identifiers_are_planted_anywhere_then_no_piece_leaves(
    engine: Engine, planted: tuple[dict[str, Any], list[str], str], state: int | None, device: bool
) -> None:
    data, ids, ip = planted
    kind = EventKind.DEVICE if device else EventKind.USAGE
    event = parse_event(orjson.dumps(data), data["subject_id"].encode(), kind, max_bytes=65536)
    assert isinstance(event, Event), event
    pieces = {value[i : i + PIECE] for value in ids for i in range(len(value) - PIECE + 1)}
    for decision in engine.decide(event, state):
        if decision.verdict is not Verdict.FORWARD:
            continue
        assert decision.value is not None
        out = decision.value.decode() + "\n" + (decision.key or b"").decode()
        leaked = sorted(piece for piece in pieces if piece in out)
        assert not leaked, (decision.sink, leaked)
        # An IP is truncated by design (its /24 prefix may leave); the full address never does.
        assert ip not in out, decision.sink
