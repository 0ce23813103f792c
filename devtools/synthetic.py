"""Synthetic traffic: usage and device events (~500 bytes) and consent records over N subjects.

Deterministic for a seed. The mix follows what a consumer site sees: most subjects have a consent
record, some withdrew, some never answered (unknown), a few send GPC, and a few are under 13, with
or without a parent's consent. Identifiers use documentation ranges (192.0.2.0/24, 2001:db8::/32)
and `example.com`, so a leak in a test is easy to spot.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

from gateway.consent_state import PURPOSES
from topologies.consent_cli import consent_record as make_consent_record

__all__ = ["PURPOSES", "Mix", "Traffic", "consent_record", "subject_id"]

PAGES = ("/", "/products/term-life", "/quote", "/help/faq", "/articles/retirement-basics",
         "/account/overview", "/contact")  # fmt: skip
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
)
USAGE_TYPES = ("page_view", "page_view", "page_view", "screen_view", "feature_use", "app_open")


@dataclass(frozen=True)
class Mix:
    """Shares of subjects by consent situation (the rest get a full grant)."""

    unknown: float = 0.15
    withdrawn: float = 0.15
    partial: float = 0.25
    child: float = 0.04
    child_with_parent: float = 0.02
    gpc_events: float = 0.05


def subject_id(index: int) -> str:
    return f"u-{index:08d}"


class Traffic:
    def __init__(self, subjects: int, *, seed: int = 7, mix: Mix | None = None) -> None:
        self.subjects = subjects
        self.mix = mix or Mix()
        self._rng = random.Random(seed)
        self._seq = 0

    def kind_of_subject(self, index: int) -> str:
        """A stable situation per subject, derived from its index (no state to keep)."""
        share = random.Random(index * 7919 + 13).random()
        m = self.mix
        bounds = (
            ("unknown", m.unknown),
            ("withdrawn", m.withdrawn),
            ("partial", m.partial),
            ("child", m.child),
            ("child_with_parent", m.child_with_parent),
        )
        edge = 0.0
        for name, width in bounds:
            edge += width
            if share < edge:
                return name
        return "granted"

    def consent(self, index: int, updated_at: str) -> bytes | None:
        """The consent record for a subject's situation, or None when it never answered."""
        situation = self.kind_of_subject(index)
        if situation == "unknown":
            return None
        rng = random.Random(index)
        purposes: dict[str, bool | None]
        if situation == "withdrawn":
            purposes = dict.fromkeys(PURPOSES, False)
        elif situation == "partial":
            purposes = {p: rng.random() < 0.5 for p in PURPOSES}
        else:
            purposes = dict.fromkeys(PURPOSES, True)
        child = situation.startswith("child")
        return consent_record(
            subject_id(index), updated_at, purposes,
            under_13=child, parental_consent=situation == "child_with_parent",
        )  # fmt: skip

    def random_subject(self) -> int:
        return self._rng.randrange(self.subjects)

    def chance(self, share: float) -> bool:
        return self._rng.random() < share

    def invalid(self, occurred_at: str) -> tuple[str, bytes, bytes]:
        """A record the gateway must send to the DLQ (a producer bug, say)."""
        kind, key, value = self.event(occurred_at)
        broken = self._rng.choice((
            value[:-7],  # truncated: not JSON
            value.replace(b'"occurred_at"', b'"occurred"'),  # a required field missing
            value.replace(b'"event_type":"', b'"event_type":1,"x":"'),  # wrong type
            value[:-1] + b',"ip":"192.0.2.1"}',  # a repeated key
        ))  # fmt: skip
        return kind, key, broken

    def event(self, occurred_at: str) -> tuple[str, bytes, bytes]:
        """One event: (kind 'usage'|'device', key, value)."""
        rng = self._rng
        self._seq += 1
        index = rng.randrange(self.subjects)
        subject = subject_id(index)
        device = rng.random() < 0.3
        body: dict[str, object] = {
            "event_id": f"ev-{self._seq:010d}-{rng.getrandbits(32):08x}",
            "subject_id": subject,
            "occurred_at": occurred_at,
            "event_type": "device_seen" if device else rng.choice(USAGE_TYPES),
            "ip": f"192.0.2.{index % 250 + 1}" if rng.random() < 0.8 else f"2001:db8::{index:x}",
            "user_agent": rng.choice(USER_AGENTS),
            "device_type": rng.choice(("desktop", "mobile", "tablet")),
            "os": rng.choice(("Windows", "iOS", "macOS", "Android")),
            "cookie_id": f"ck-{index:08d}-c00k1e",
            "gpc": rng.random() < self.mix.gpc_events,
            "dnt": rng.random() < 0.1,
        }
        if device:
            body |= {
                "device_id": f"dev-{index:08d}-d3v1ce",
                "advertising_id": f"ad-{index:08d}-0000-4000-8000-00000000ad1d",
                "app_version": f"5.{index % 9}.{index % 4}",
            }
        else:
            page = rng.choice(PAGES)
            body |= {
                "page": f"https://www.example.com{page}?utm_source=news&session=s{index}#top",
                "referrer": f"https://search.example.com/?q=term+life+{index % 97}",
                "browser": rng.choice(("Chrome", "Safari", "Firefox")),
                "feature": rng.choice(("quote_calculator", "chat", "search", "")),
                "pixel_id": f"px-{index:08d}",
                "properties": {"ab_bucket": rng.choice("ABC"), "plan": "term", "screen_w": 1280},
            }
        return ("device" if device else "usage"), subject.encode(), orjson.dumps(body)


def consent_record(
    subject: str,
    updated_at: str,
    purposes: dict[str, bool | None],
    *,
    under_13: bool | None = False,
    parental_consent: bool | None = False,
) -> bytes:
    """A consent record from the load generator (`source: loadgen`)."""
    return make_consent_record(
        subject, updated_at, purposes,
        under_13=under_13, parental_consent=parental_consent, source="loadgen",
    )  # fmt: skip
