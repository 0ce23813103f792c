"""The shape of the config files: pydantic models (extra keys forbidden) and field rules.

Pydantic runs at load time only; the engine compiles these into plain plans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.events import (
    EVENT_TYPE_PATTERN,
    IDENTIFIER_FIELDS,
    KNOWN_FIELDS,
    URL_FIELDS,
    EventKind,
)
from gateway.identifier_names import denotes_identifier, denotes_ip
from gateway.operators.base import (
    IDENTIFIER,
    IP,
    PLAIN,
    PROPERTY,
    TIMESTAMP,
    URL,
    USER_AGENT,
    OperatorConfig,
)

Purpose = Literal["analytics", "personalization", "advertising", "social", "third_party_sharing"]
Audience = Literal["internal", "advertising", "social", "third_party"]
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
EventTypeName = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN)]
# The event types of the contract; settings may list more (see Settings.known_event_types).
CONTRACT_EVENT_TYPES = ("page_view", "screen_view", "feature_use", "app_open", "device_seen")
OTHER_EVENT_TYPE = "other"  # what every event type outside the allowlist is reported as
FieldSpec = Any  # checked by gateway.config against the operator registry
# `exceptions`: the path of a refusal an internal sink waives -> why (shown in reviews)
ExceptionReason = Annotated[str, Field(min_length=10, max_length=500, pattern=r"\S")]
# Audiences a child never reaches; the first set applies without parental consent.
BARRED_WITHOUT_PARENTAL_CONSENT = frozenset({"advertising", "social", "third_party"})
BARRED_WITH_PARENTAL_CONSENT = frozenset({"advertising", "social"})


def field_class(name: str) -> str:
    """The operator class of an event field (which operators may touch it)."""
    if name == "ip":
        return IP
    if name in IDENTIFIER_FIELDS:
        return IDENTIFIER
    if name in URL_FIELDS:
        return URL
    if name == "user_agent":
        return USER_AGENT
    if name == "occurred_at":
        return TIMESTAMP
    return PLAIN


def property_class(name: str) -> str:
    """The operator class of a `properties` key follows its name (gateway.identifier_names):
    IP or IDENTIFIER when the name denotes one (so `keep` is refused), else PROPERTY."""
    return IP if denotes_ip(name) else IDENTIFIER if denotes_identifier(name) else PROPERTY


ALLOWLISTABLE_FIELDS = KNOWN_FIELDS - {"properties"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Topics(_Strict):
    """Names of the topics the gateway reads and writes (besides the sink topics)."""

    usage_raw: TopicName = "events.usage.raw"
    device_raw: TopicName = "events.device.raw"
    consent: TopicName = "consent.state"
    dlq: TopicName = "gateway.dlq"
    audit: TopicName = "gateway.audit"


class Settings(_Strict):
    """config/gateway.yaml."""

    topics: Topics = Topics()
    unknown_age: Literal["adult", "child"] = "adult"
    honour_dnt: bool = False
    max_event_bytes: int = Field(default=65536, ge=1024, le=1_048_576)
    pseudonym_cache_size: int = Field(default=100_000, ge=0, le=10_000_000)
    audit_forwards: bool = False
    # The value guard (gateway.guard): identifier values at least this long are found anywhere
    # inside a string; shorter ones only as a whole token (they would match by chance).
    identifier_min_length: int = Field(default=6, ge=1, le=64)
    # Consent ordering (gateway.consent): a record dated more than this after its own Kafka
    # record timestamp is ordered at that timestamp instead (a skewed clock never outranks).
    consent_clock_tolerance_seconds: int = Field(default=300, ge=0, le=86_400)
    # Event types that may leave the gateway as they are; any other is "other" in sink outputs,
    # sink filters and audit records (a free-form event_type could carry personal data).
    known_event_types: list[EventTypeName] = Field(
        default=list(CONTRACT_EVENT_TYPES), min_length=1, max_length=256
    )


class SinkRuleModel(_Strict):
    """config/sinks/<name>.yaml (the sink's name is the file name)."""

    topic: TopicName
    audience: Audience
    description: str = ""
    purposes: list[Purpose] = Field(min_length=1)
    purposes_match: Literal["all", "any"] = "all"
    unknown_consent: Literal["deny", "grant"] = "deny"
    identifier_purposes: list[Purpose] = []
    children: Literal["drop", "strip_identifiers"] = "drop"
    key: Literal["pseudonym", "none"] = "none"
    kinds: list[Literal["usage", "device"]] = Field(min_length=1)
    event_types: list[str] | None = None
    fields: dict[str, FieldSpec] = Field(min_length=1)
    properties: dict[str, FieldSpec] = {}
    exceptions: dict[str, ExceptionReason] = {}


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One allowlisted field (or `properties` key) and its operator config."""

    name: str
    config: OperatorConfig


@dataclass(frozen=True, slots=True)
class SinkRule:
    """A validated sink rule."""

    name: str
    topic: str
    audience: str
    purposes: tuple[str, ...]
    purposes_match: str
    unknown_consent: str
    identifier_purposes: tuple[str, ...]
    children: str
    key: str
    kinds: frozenset[EventKind]
    event_types: frozenset[str] | None
    fields: tuple[FieldRule, ...]
    properties: tuple[FieldRule, ...]
    description: str = ""
    exceptions: tuple[tuple[str, str], ...] = ()  # waived refusals (path, why); internal only
