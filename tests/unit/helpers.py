"""Builders for test events and consent states (example.com, documentation IPs, .invalid)."""

from __future__ import annotations

import html
import unicodedata
from typing import Any
from urllib.parse import unquote

import orjson

from gateway.consent import ConsentUpdate, parse_consent
from gateway.events import Event, EventKind, parse_event

UA_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def event_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "evt-1",
        "subject_id": "subj-canary-1a2b3c",
        "occurred_at": "2026-11-26T12:34:56.789Z",
        "event_type": "page_view",
        "page": "https://www.example.com/products?utm_source=mail&email=pat@example.invalid#x",
        "referrer": "https://search.example.com/?q=insurance",
        "user_agent": UA_CHROME,
        "ip": "192.0.2.77",
        "device_id": "canary-dev-7f3a9c",
        "cookie_id": "canary-ck-4e5d6f",
        "pixel_id": "canary-px-8a9b0c",
        "advertising_id": "canary-ad-1d2e3f",
        "device_type": "desktop",
        "properties": {"experiment": "hero", "email": "pat@example.invalid"},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def make_event(kind: EventKind = EventKind.USAGE, **overrides: Any) -> Event:
    data = event_dict(**overrides)
    parsed = parse_event(orjson.dumps(data), data["subject_id"].encode(), kind, max_bytes=65536)
    assert isinstance(parsed, Event), parsed
    return parsed


def consent_state(
    purposes: dict[str, bool | None] | None = None,
    *,
    under_13: bool | None = False,
    parental: bool | None = None,
    updated_at: str = "2026-11-26T12:00:00Z",
) -> int:
    record = {
        "updated_at": updated_at,
        "purposes": purposes or {},
        "age": {"under_13": under_13, "parental_consent": parental},
    }
    update = parse_consent(orjson.dumps(record), b"subj")
    assert isinstance(update, ConsentUpdate), update
    return update.state


ALL_GRANTED = {
    "analytics": True,
    "personalization": True,
    "advertising": True,
    "social": True,
    "third_party_sharing": True,
}
ALL_DENIED = dict.fromkeys(ALL_GRANTED, False)


def reader_view(text: str) -> str:
    """What a person reading `text` sees, to compare spellings: decoded, then case-folded.

    Percent-encoding, HTML references and compatibility forms undone until nothing changes,
    then Unicode full case folding with the Turkic i's as i. The standard library on its own:
    the value guard's `fold` and decodings are what the tests using it check.
    """
    for _ in range(20):
        before = text
        text = unicodedata.normalize("NFKC", html.unescape(unquote(text)))
        if text == before:
            break
    return text.casefold().replace("\u0131", "i").replace("\u0307", "")


def full_width(text: str) -> str:
    """`text` with its printable ASCII characters in their full-width forms (U+FF01-U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
