"""Loading and validating the config directory: gateway.yaml plus sinks/*.yaml.

Every problem is gathered and reported at once as `FILE:LINE: PATH: MESSAGE`, with the line
taken from the YAML node. `version` is a short stable hash of all config files' content.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway.config_models import (
    ALLOWLISTABLE_FIELDS,
    CONTRACT_EVENT_TYPES,
    OTHER_EVENT_TYPE,
    FieldRule,
    Settings,
    SinkRule,
    SinkRuleModel,
    Topics,
    field_class,
    property_class,
)
from gateway.events import EventKind
from gateway.operators import OPERATORS
from gateway.operators.base import INTERNAL, IP, PROPERTY
from gateway.yamlnodes import LoadedYaml, PathKey, Problem, load_yaml, path_text

__all__ = ["ConfigError", "GatewayConfig", "Problem", "load_config"]
SETTINGS_FILE = "gateway.yaml"
SINKS_DIR = "sinks"
_SINK_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")


class ConfigError(Exception):
    """The config is invalid; `.problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """A validated config: settings, sink rules in file-name order, and the content version."""

    settings: Settings
    sinks: tuple[SinkRule, ...]
    version: str


def _valid_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    for part in loc:
        info = model.model_fields.get(str(part))
        annotation = info.annotation if info is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str, doc: LoadedYaml, path: PathKey, message: str) -> None:
        self.problems.append(Problem(file, doc.line_of(path), path_text(path), message))

    def validate(
        self, model: type[BaseModel], data: Any, file: str, doc: LoadedYaml, prefix: PathKey = ()
    ) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as error:
            for item in error.errors(include_url=False):
                loc = tuple(item["loc"])
                message = str(item["msg"])
                if item["type"] == "extra_forbidden":
                    message = f"unknown key; valid keys: {', '.join(_valid_keys(model, loc[:-1]))}"
                elif item["type"] == "missing":
                    message = "required key is missing"
                self.add(file, doc, (*prefix, *loc), message)
            return None


@dataclass(slots=True)
class _SinkFile:
    """One sink file being checked: where problems go, its audience as written (a missing or
    invalid one counts as a partner's), and the exceptions it may use and has used."""

    file: str
    doc: LoadedYaml
    out: _Collector
    audience: str
    exceptions: frozenset[str]
    used: set[str]

    def add(self, path: PathKey, message: str) -> None:
        self.out.add(self.file, self.doc, path, message)

    def waives(self, key: str) -> bool:
        """True (and noted) when the sink lists `key` under `exceptions` and may do so."""
        if self.audience == INTERNAL and key in self.exceptions:
            self.used.add(key)
            return True
        return False

    def hint(self, key: str) -> str:
        if self.audience == INTERNAL:
            return f"; or allow it under `exceptions` as '{key}: <why>'"
        return ""


def _field_rule(
    name: str, spec: Any, *, klass: str, path: PathKey, sink: _SinkFile
) -> FieldRule | None:
    if not isinstance(spec, str | dict):
        sink.add(path, "must be an operator name or a mapping with 'op'")
        return None
    data = {"op": spec} if isinstance(spec, str) else dict(spec)
    op_path = path if isinstance(spec, str) else (*path, "op")
    op = data.get("op")
    if not isinstance(op, str):
        sink.add(op_path, "required key 'op' is missing or not a string")
        return None
    operator = OPERATORS.get(op)
    if operator is None:
        valid = ", ".join(sorted(OPERATORS))
        sink.add(op_path, f"unknown operator '{op}'; valid operators: {valid}")
        return None
    named = path[0] == "properties" and klass != PROPERTY  # a property named like an identifier
    if klass not in operator.field_classes and not (
        named and PROPERTY in operator.field_classes and sink.waives(path_text(path))
    ):
        allowed = ", ".join(sorted(n for n, cls in OPERATORS.items() if klass in cls.field_classes))
        if named:
            message = (
                f"operator '{op}' is not allowed on property '{name}': its name denotes"
                f" {'an IP address' if klass == IP else 'an identifier or contact data'}"
                f" (config/README.md, Identifier names); use one of: {allowed}"
            )
            sink.add(op_path, message + sink.hint(path_text(path)))
        else:
            message = f"operator '{op}' is not allowed on {klass} field '{name}'; use one of: "
            sink.add(op_path, message + allowed)
        return None
    config = sink.out.validate(operator.config_model, data, sink.file, sink.doc, path)
    if config is None:
        return None
    config = operator.for_audience(config, sink.audience)
    for refusal in operator.refusals(config, sink.audience):
        key = f"{path_text(path)}.{refusal.exception}" if refusal.exception else ""
        if not (key and sink.waives(key)):
            sink.add((*path, *refusal.path), refusal.message + (sink.hint(key) if key else ""))
    return FieldRule(name, config)


def _field_rules(
    raw: dict[Any, Any], sink: _SinkFile
) -> tuple[tuple[FieldRule, ...], tuple[FieldRule, ...]]:
    """The `fields` and `properties` allowlists, checked even when other keys are wrong."""
    fields: list[FieldRule | None] = []
    raw_fields = raw.get("fields")
    for field_name, spec in raw_fields.items() if isinstance(raw_fields, dict) else ():
        path = ("fields", str(field_name))
        if field_name not in ALLOWLISTABLE_FIELDS:
            known = ", ".join(sorted(ALLOWLISTABLE_FIELDS))
            sink.add(path, f"unknown event field; known fields: {known}")
            continue
        klass = field_class(field_name)
        fields.append(_field_rule(field_name, spec, klass=klass, path=path, sink=sink))
    raw_props = raw.get("properties")
    properties = [
        _field_rule(
            str(key), spec, klass=property_class(str(key)), path=("properties", str(key)), sink=sink
        )
        for key, spec in (raw_props.items() if isinstance(raw_props, dict) else ())
    ]
    return (
        tuple(rule for rule in fields if rule is not None),
        tuple(rule for rule in properties if rule is not None),
    )


def _check_exceptions(sink: _SinkFile) -> None:
    """Exceptions are for internal sinks only, and each must waive something."""
    for key in sorted(sink.exceptions - sink.used):
        if sink.audience != INTERNAL:
            message = f"only internal sinks may list exceptions (audience is '{sink.audience}')"
        else:
            message = "this exception waives nothing in this rule; remove it"
        sink.add(("exceptions", key), message)


def _sink_rule(
    name: str,
    *,
    model: SinkRuleModel,
    allowlists: tuple[tuple[FieldRule, ...], tuple[FieldRule, ...]],
    known_event_types: frozenset[str],
    file: str,
    doc: LoadedYaml,
    out: _Collector,
) -> SinkRule:
    if model.unknown_consent == "grant" and model.audience != INTERNAL:
        message = "unknown consent may be granted only for internal sinks (fail closed)"
        out.add(file, doc, ("unknown_consent",), message)
    for index, event_type in enumerate(model.event_types or ()):
        if event_type not in known_event_types and event_type != OTHER_EVENT_TYPE:
            message = (
                f"event type '{event_type}' is not in known_event_types of {SETTINGS_FILE}"
                f" (sinks see other types as '{OTHER_EVENT_TYPE}')"
            )
            out.add(file, doc, ("event_types", index), message)
    return SinkRule(
        name=name,
        topic=model.topic,
        audience=model.audience,
        purposes=tuple(model.purposes),
        purposes_match=model.purposes_match,
        unknown_consent=model.unknown_consent,
        identifier_purposes=tuple(model.identifier_purposes),
        children=model.children,
        key=model.key,
        kinds=frozenset(EventKind(kind) for kind in model.kinds),
        event_types=frozenset(model.event_types) if model.event_types is not None else None,
        fields=allowlists[0],
        properties=allowlists[1],
        description=model.description,
        exceptions=tuple(sorted(model.exceptions.items())),
    )


def _read(path: Path, label: str, name: str, out: _Collector, hasher: Any) -> LoadedYaml | None:
    try:
        raw = path.read_bytes()
    except OSError as error:
        out.problems.append(Problem(label, 1, ".", f"cannot read file ({error.strerror})"))
        return None
    hasher.update(f"{name}\0".encode() + raw + b"\0")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        out.problems.append(Problem(label, 1, ".", "file is not valid UTF-8"))
        return None
    return load_yaml(text, label, out.problems)


SinkTopic = tuple[str, str, str, LoadedYaml]  # sink name, topic, file, document


def _reserved_topics(settings: Settings | None, doc: LoadedYaml | None) -> dict[str, str]:
    """The gateway's own topics; from the raw file (over defaults) when settings are invalid."""
    if settings is not None:
        return dict(settings.topics)
    reserved = dict(Topics())
    raw = doc.value.get("topics") if doc is not None and isinstance(doc.value, dict) else None
    if isinstance(raw, dict):
        reserved.update({k: v for k, v in raw.items() if k in reserved and isinstance(v, str)})
    return reserved


def _check_topics(reserved: dict[str, str], sinks: list[SinkTopic], out: _Collector) -> None:
    seen: dict[str, str] = {}
    for name, topic, file, doc in sinks:
        for role, reserved_topic in reserved.items():
            if topic == reserved_topic:
                out.add(file, doc, ("topic",), f"topic '{topic}' is the gateway's {role} topic")
        if topic in seen:
            message = f"topic '{topic}' is also written by sink '{seen[topic]}'"
            out.add(file, doc, ("topic",), message)
        seen.setdefault(topic, name)


def load_config(directory: Path) -> GatewayConfig:
    """Load and validate a config directory, or raise ConfigError listing every problem."""
    out = _Collector()
    hasher = hashlib.sha256()
    settings_label = str(directory / SETTINGS_FILE)
    settings: Settings | None = None
    doc = _read(directory / SETTINGS_FILE, settings_label, SETTINGS_FILE, out, hasher)
    if doc is not None:
        settings = out.validate(Settings, doc.value, settings_label, doc)
        if settings is not None and len(set(dict(settings.topics).values())) != 5:
            out.add(settings_label, doc, ("topics",), "the five gateway topics must be distinct")
    known_event_types = frozenset(
        settings.known_event_types if settings is not None else CONTRACT_EVENT_TYPES
    )
    sink_files = sorted((directory / SINKS_DIR).glob("*.yaml"))
    if not sink_files:
        out.problems.append(Problem(str(directory / SINKS_DIR), 1, ".", "no sink rules (*.yaml)"))
    rules: list[SinkRule] = []
    topics: list[SinkTopic] = []
    for path in sink_files:
        label = str(path)
        sink_doc = _read(path, label, f"{SINKS_DIR}/{path.name}", out, hasher)
        if sink_doc is None:
            continue
        if not _SINK_NAME.match(path.stem):
            out.add(label, sink_doc, (), "sink file name must match [a-z][a-z0-9_]{0,39}.yaml")
        raw = sink_doc.value if isinstance(sink_doc.value, dict) else {}
        exceptions = raw.get("exceptions")
        sink = _SinkFile(
            label,
            sink_doc,
            out,
            audience=str(raw.get("audience", "")),
            exceptions=frozenset(map(str, exceptions))
            if isinstance(exceptions, dict)
            else frozenset(),
            used=set(),
        )
        allowlists = _field_rules(raw, sink)
        _check_exceptions(sink)
        if isinstance(raw.get("topic"), str):
            topics.append((path.stem, raw["topic"], label, sink_doc))
        model = out.validate(SinkRuleModel, sink_doc.value, label, sink_doc)
        if model is not None:
            rules.append(
                _sink_rule(
                    path.stem,
                    model=model,
                    allowlists=allowlists,
                    known_event_types=known_event_types,
                    file=label,
                    doc=sink_doc,
                    out=out,
                )
            )
    _check_topics(_reserved_topics(settings, doc), topics, out)
    if out.problems or settings is None:
        raise ConfigError(sorted(out.problems, key=lambda p: (p.file, p.line, p.path)))
    return GatewayConfig(settings, tuple(rules), hasher.hexdigest()[:12])
