"""Property: identifiers planted anywhere in an event never leave raw, nor any 8-character piece.

Planted as they are, and (the second property) in another spelling: another case, folded,
percent-encoded, HTML-escaped, full-width, and these nested; with identifiers that are
themselves such spellings (`ß`, the Turkic i's, full-width letters, `%41`, `&amp;`).

Identifiers are random strings that contain URL and text delimiters (`/ ? # & = ; % + : .`,
spaces), so an operator that cuts text at a delimiter would leave pieces behind if the guard
only looked for whole values after the operators ran. Every fourth character is one of `QZJK`,
which no fixed text of an output holds (field names, tokens, pseudonyms and timestamps are
lowercase, hex or digits), so a piece found in an output can only have come from the event.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.decision import Verdict
from gateway.engine import Engine
from gateway.events import Event, EventKind, parse_event
from tests.unit.helpers import ALL_GRANTED, UA_CHROME, consent_state, full_width, reader_view

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


# Pieces of identifiers that other spellings change: case folding beyond lower case, and
# values that are encodings themselves.
_SPELLED = ["ß", "ẞ", "ı", "İ", "Σ", "ς", "Ｑ", "ｚ", "%41", "%25", "&amp;", "&lt;", "&#74;"]
_SPELLED += list("0123456789-/?#=;:._~ +")


@st.composite
def spelled_identifiers(draw: st.DrawFn) -> str:
    length = draw(st.integers(min_value=PIECE, max_value=20))
    return "".join(
        draw(st.sampled_from(_MARKS if index % 4 == 0 else _SPELLED)) for index in range(length)
    )


# Ways a value gets written elsewhere in an event; each keeps it the same to a reader
SPELLINGS: list[Callable[[str], str]] = [
    str.upper,
    str.lower,
    str.casefold,
    lambda text: quote(text, safe=""),
    lambda text: quote(quote(text, safe=""), safe=""),
    html.escape,
    full_width,
    lambda text: quote(full_width(text), safe=""),
    lambda text: html.escape(quote(text.upper(), safe="")),
]


@st.composite
def planted_events(
    draw: st.DrawFn, ids_from: st.SearchStrategy[str] | None = None, spelled: bool = False
) -> tuple[dict[str, Any], list[str], str]:
    ids_from = identifiers() if ids_from is None else ids_from
    ids = draw(st.lists(ids_from, min_size=4, max_size=4, unique=True))
    subject, device, cookie, advertising = ids
    ip = f"198.51.100.{draw(st.integers(min_value=10, max_value=254))}"
    values = [*ids, ip]

    def slot() -> str:
        if draw(st.booleans()):
            value = draw(st.sampled_from(values))
            if spelled and draw(st.booleans()):
                value = draw(st.sampled_from(SPELLINGS))(value)
            return draw(FILLER) + value + draw(FILLER)
        return draw(FILLER)

    page = f"https://www.example.com/{slot()}/{slot()}?utm_campaign={slot()}&q={slot()}#{slot()}"
    event_id = "evt-" + slot()  # the contract's event id: at most 128 characters
    event = {
        "event_id": event_id if len(event_id) <= 128 else "evt-" + draw(FILLER),
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


def _assert_no_piece_leaves(
    engine: Engine,
    planted: tuple[dict[str, Any], list[str], str],
    state: int | None,
    device: bool,
    view: Callable[[str], str],
) -> None:
    """No forwarded record holds a value's 8-character piece, both seen through `view`."""
    data, ids, ip = planted
    kind = EventKind.DEVICE if device else EventKind.USAGE
    event = parse_event(orjson.dumps(data), data["subject_id"].encode(), kind, max_bytes=65536)
    assert isinstance(event, Event), event
    seen = [view(value) for value in ids]
    pieces = {value[i : i + PIECE] for value in seen for i in range(len(value) - PIECE + 1)}
    for decision in engine.decide(event, state):
        if decision.verdict is not Verdict.FORWARD:
            continue
        assert decision.value is not None
        out = view(decision.value.decode() + "\n" + (decision.key or b"").decode())
        leaked = sorted(piece for piece in pieces if piece in out)
        assert not leaked, (decision.sink, leaked)
        # An IP is truncated by design (its /24 prefix may leave); the full address never does.
        assert ip not in out, decision.sink


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted=planted_events(), state=st.sampled_from(STATES), device=st.booleans())
def test_when_identifiers_are_planted_anywhere_then_no_piece_leaves(
    engine: Engine, planted: tuple[dict[str, Any], list[str], str], state: int | None, device: bool
) -> None:
    _assert_no_piece_leaves(engine, planted, state, device, str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    planted=planted_events(spelled_identifiers(), spelled=True),
    state=st.sampled_from(STATES),
    device=st.booleans(),
)
def test_when_identifiers_are_planted_in_other_spellings_then_no_piece_leaves(
    engine: Engine, planted: tuple[dict[str, Any], list[str], str], state: int | None, device: bool
) -> None:
    """Compared as a reader would: every output decoded and case-folded, every value too."""
    _assert_no_piece_leaves(engine, planted, state, device, reader_view)
