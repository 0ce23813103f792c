"""The shape of the config files, as pydantic models: the validated model is the rule.

`Settings` is config/gateway.yaml; `SinkRule` is one config/sinks/<name>.yaml. Both are frozen
and refuse unknown keys; a field rule is its operator's typed config (`AnyOperatorConfig`, told
apart by `op`). Pydantic runs at load time only: gateway.config adds the checks that need more
than one key (which operator a field may take, per-audience refusals, exceptions) with line
numbers, and the core (gateway.plan, gateway.decision) compiles each rule once for the hot path.
`json_schemas` gives the JSON Schemas that editors read (config/schema/).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from gateway.consent_state import Purpose
from gateway.events import (
    EVENT_TYPE_PATTERN,
    IDENTIFIER_FIELDS,
    KNOWN_FIELDS,
    URL_FIELDS,
)
from gateway.identifier_names import denotes_identifier, denotes_ip
from gateway.operators import OPERATORS, AnyOperatorConfig
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

Audience = Literal["internal", "advertising", "social", "third_party"]
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
EventTypeName = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN)]
# The event types of the contract; settings may list more (see Settings.known_event_types).
CONTRACT_EVENT_TYPES = ("page_view", "screen_view", "feature_use", "app_open", "device_seen")
OTHER_EVENT_TYPE = "other"  # what every event type outside the allowlist is reported as
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
    """The field class of a `properties` key, from its name (gateway.identifier_names).

    IP or IDENTIFIER when the name denotes one (so `keep` is refused), else PROPERTY.
    """
    return IP if denotes_ip(name) else IDENTIFIER if denotes_identifier(name) else PROPERTY


ALLOWLISTABLE_FIELDS = KNOWN_FIELDS - {"properties"}
_FIELD_NAMES: list[JsonValue] = [*sorted(ALLOWLISTABLE_FIELDS)]
OPERATOR_SPEC_ERROR = "must be an operator name or a mapping with 'op'"


def _operator_spec(value: Any) -> Any:
    """`ip: ip_truncate` is short for `ip: {op: ip_truncate}`."""
    if isinstance(value, str):
        return {"op": value}
    if not isinstance(value, dict):
        raise PydanticCustomError("operator_spec", OPERATOR_SPEC_ERROR)
    return value


def _known_field(name: str) -> str:
    if name not in ALLOWLISTABLE_FIELDS:
        known = ", ".join(sorted(ALLOWLISTABLE_FIELDS))
        message = "unknown event field; known fields: {known}"
        raise PydanticCustomError("unknown_field", message, {"known": known})
    return name


OperatorName = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(OPERATORS)})]
# A field rule as written: an operator's name, or a mapping with `op` and its options.
OperatorSpec = Annotated[
    AnyOperatorConfig,
    BeforeValidator(_operator_spec, json_schema_input_type=OperatorName | AnyOperatorConfig),
]
FieldName = Annotated[
    str,
    BeforeValidator(_known_field),
    WithJsonSchema({"type": "string", "enum": sorted(ALLOWLISTABLE_FIELDS)}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Topics(_Strict):
    """Names of the topics the gateway reads and writes (besides the sink topics)."""

    usage_raw: TopicName = "events.usage.raw"
    device_raw: TopicName = "events.device.raw"
    consent: TopicName = "consent.state"
    dlq: TopicName = "gateway.dlq"
    audit: TopicName = "gateway.audit"
    # Erasure notices (gateway.erasure): one record per sink and erased or child subject.
    erasure: TopicName = "gateway.erasure"


class Settings(_Strict):
    """config/gateway.yaml."""

    topics: Topics = Topics()
    unknown_age: Literal["adult", "child"] = "adult"
    honour_dnt: bool = False
    # GPC (CONTRACT.md, "Consent records"): `per_event` withdraws advertising and third-party
    # sharing for the event that carries it (the policy as it reads); `sticky` also for every
    # later event of a subject with a consent record, until a consent record applied after the
    # signal grants either purpose explicitly (gateway.consent, "Sticky GPC").
    gpc: Literal["per_event", "sticky"] = "per_event"
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


class SinkRule(_Strict):
    """A sink rule: config/sinks/<name>.yaml, validated.

    Its `name` is the file name (set by the loader, never read from the file). `fields` and
    `properties` map a field (a `properties` key) to its operator's config, in config order,
    with the audience's defaults filled in (`Operator.for_audience`).
    """

    name: SkipJsonSchema[str] = Field(default="", exclude=True)
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
    fields: dict[FieldName, OperatorSpec] = Field(
        min_length=1,
        json_schema_extra={"propertyNames": {"enum": _FIELD_NAMES}},
    )
    properties: dict[str, OperatorSpec] = {}
    # a refusal an internal sink waives (its path, as `rules check` prints it) -> why
    exceptions: dict[str, ExceptionReason] = {}

    @field_validator("fields", "properties")
    @classmethod
    def _audience_defaults(
        cls, rules: dict[str, OperatorConfig], info: ValidationInfo
    ) -> dict[str, OperatorConfig]:
        audience = info.data.get("audience", "")  # missing or invalid: a partner's defaults
        return {name: OPERATORS[c.op].for_audience(c, audience) for name, c in rules.items()}

    def field_rules(self) -> Mapping[str, OperatorConfig]:
        """`fields` and `properties` together (for checks that read every operator)."""
        return cast("Mapping[str, OperatorConfig]", {**self.fields, **self.properties})


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema (draft 2020-12) of gateway.yaml and of a sink rule file.

    For editors (config/schema/, `gateway rules schema`). `rules check` stays the judge: the
    schemas cannot say which operator a field may take or what an audience refuses.
    """
    return {
        f"{name}.schema.json": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": title,
            **model.model_json_schema(),
        }
        for name, title, model in (
            ("gateway", "config/gateway.yaml", Settings),
            ("sink", "config/sinks/<name>.yaml", SinkRule),
        )
    }
