"""Loading and validating the config directory: gateway.yaml plus sinks/*.yaml.

Each file is validated once by its model (gateway.config_models: `Settings`, `SinkRule`); then
the checks that read more than one key run over the validated rule: which operators a field or
a `properties` key may take (by its name, gateway.identifier_names), each operator's refusals
for the sink's audience, exceptions (internal sinks only, each waiving something), unknown
consent, event types, topics. Every problem is gathered and reported at once as
`FILE:LINE: PATH: MESSAGE`, with the line taken from the YAML node. `version` is a short stable
hash of all config files' content.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from gateway.config_models import (
    ALLOWLISTABLE_FIELDS,
    CONTRACT_EVENT_TYPES,
    OTHER_EVENT_TYPE,
    OperatorSpec,
    Settings,
    SinkRule,
    Topics,
    field_class,
    property_class,
)
from gateway.errors import GatewayError
from gateway.operators import OPERATORS
from gateway.operators.base import INTERNAL, IP, PROPERTY, OperatorConfig
from gateway.yamlnodes import LoadedYaml, PathKey, Problem, load_yaml, path_text

__all__ = ["ConfigError", "GatewayConfig", "Problem", "load_config"]
SETTINGS_FILE = "gateway.yaml"
SINKS_DIR = "sinks"
_SINK_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")


class ConfigError(GatewayError):
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


_ALLOWLISTS = ("fields", "properties")
_SPEC: TypeAdapter[OperatorConfig] = TypeAdapter(OperatorSpec)


def _valid_keys(model: type[BaseModel], loc: PathKey) -> list[str]:
    if len(loc) == 2 and loc[0] in _ALLOWLISTS:  # inside a field rule: its operator's options
        return []
    for part in loc:
        info = model.model_fields.get(str(part))
        annotation = info.annotation if info is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(name for name, info in model.model_fields.items() if not info.exclude)


def _error(model: type[BaseModel], item: Any) -> tuple[PathKey, str]:
    """A pydantic error as (path in the file, message), without pydantic's extra path parts.

    The tag pydantic puts after a field rule's name (`fields.ip.ip_truncate.x`) and the `[key]`
    of a key error are left out.
    """
    loc: PathKey = tuple(item["loc"])
    kind, message = item["type"], str(item["msg"])
    tagged = len(loc) > 2 and loc[0] in _ALLOWLISTS and loc[2] in OPERATORS
    options = OPERATORS[str(loc[2])].config_model if tagged else None
    loc = tuple(p for i, p in enumerate(loc) if p != "[key]" and not (tagged and i == 2))
    if kind == "extra_forbidden":
        keys = sorted(options.model_fields) if options else _valid_keys(model, loc[:-1])
        message = f"unknown key; valid keys: {', '.join(keys)}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_not_found" or (
        kind == "union_tag_invalid" and not isinstance(item["input"].get("op"), str)
    ):
        loc, message = (*loc, "op"), "required key 'op' is missing or not a string"
    elif kind == "union_tag_invalid":
        valid = ", ".join(sorted(OPERATORS))
        loc, message = (
            (*loc, "op"),
            f"unknown operator '{item['input']['op']}'; valid operators: {valid}",
        )
    return loc, message


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str, doc: LoadedYaml, path: PathKey, message: str) -> None:
        self.problems.append(Problem(file, doc.line_of(path), path_text(path), message))

    def validate(self, model: type[BaseModel], data: Any, file: str, doc: LoadedYaml) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as error:
            for item in error.errors(include_url=False):
                self.add(file, doc, *_error(model, item))
            return None


@dataclass(slots=True)
class _SinkFile:
    """One sink file being checked: where problems go, its audience, its exceptions.

    The audience is as written (a missing or invalid one counts as a partner's); the exceptions
    are those the file may use and those it has used.
    """

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


def _check_field_rule(sink: _SinkFile, path: tuple[str, str], config: OperatorConfig) -> None:
    """Report whether the field may take its operator, and what options the operator refuses.

    The field (or `properties` key, judged by its name) must be of a class the operator accepts;
    the operator's refusals for the sink's audience are reported unless the sink's `exceptions`
    waive them.
    """
    section, name = path
    klass = field_class(name) if section == "fields" else property_class(name)
    operator = OPERATORS[config.op]
    op_path = (*path, "op") if (*path, "op") in sink.doc.lines else path
    named = section == "properties" and klass != PROPERTY  # a property named like an identifier
    if klass not in operator.field_classes and not (
        named and PROPERTY in operator.field_classes and sink.waives(path_text(path))
    ):
        allowed = ", ".join(sorted(n for n, cls in OPERATORS.items() if klass in cls.field_classes))
        if named:
            message = (
                f"operator '{config.op}' is not allowed on property '{name}': its name denotes"
                f" {'an IP address' if klass == IP else 'an identifier or contact data'}"
                f" (config/README.md, Identifier names); use one of: {allowed}"
            )
            sink.add(op_path, message + sink.hint(path_text(path)))
        else:
            message = (
                f"operator '{config.op}' is not allowed on {klass} field '{name}'; use one of: "
            )
            sink.add(op_path, message + allowed)
        return
    for refusal in operator.refusals(config, sink.audience):
        key = f"{path_text(path)}.{refusal.exception}" if refusal.exception else ""
        if not (key and sink.waives(key)):
            sink.add((*path, *refusal.path), refusal.message + (sink.hint(key) if key else ""))


def _check_field_rules(sink: _SinkFile, rule: SinkRule | None, raw: dict[Any, Any]) -> None:
    """Check every field rule of the validated rule (`rule`), or of the raw one when invalid.

    When the rule as a whole is invalid (`rule` None), each of its field rules in `raw` that is
    valid on its own is checked, so one run reports everything.
    """
    for section in _ALLOWLISTS:
        if rule is not None:
            entries: Any = getattr(rule, section).items()
        else:
            written = raw.get(section)
            entries = [
                (str(name), _valid_on_its_own(spec))
                for name, spec in (written.items() if isinstance(written, dict) else ())
                if section == "properties" or name in ALLOWLISTABLE_FIELDS
            ]
        for name, config in entries:
            if config is not None:
                _check_field_rule(sink, (section, name), config)


def _valid_on_its_own(spec: Any) -> OperatorConfig | None:
    try:
        return _SPEC.validate_python(spec)
    except ValidationError:
        return None  # reported by the rule's validation


def _check_exceptions(sink: _SinkFile) -> None:
    """Exceptions are for internal sinks only, and each must waive something."""
    for key in sorted(sink.exceptions - sink.used):
        if sink.audience != INTERNAL:
            message = f"only internal sinks may list exceptions (audience is '{sink.audience}')"
        else:
            message = "this exception waives nothing in this rule; remove it"
        sink.add(("exceptions", key), message)


def _check_rule(rule: SinkRule, known_event_types: frozenset[str], sink: _SinkFile) -> None:
    if rule.unknown_consent == "grant" and rule.audience != INTERNAL:
        message = "unknown consent may be granted only for internal sinks (fail closed)"
        sink.add(("unknown_consent",), message)
    for index, event_type in enumerate(rule.event_types or ()):
        if event_type not in known_event_types and event_type != OTHER_EVENT_TYPE:
            message = (
                f"event type '{event_type}' is not in known_event_types of {SETTINGS_FILE}"
                f" (sinks see other types as '{OTHER_EVENT_TYPE}')"
            )
            sink.add(("event_types", index), message)


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
        gateway_topics = dict(settings.topics) if settings is not None else {}
        if len(set(gateway_topics.values())) != len(gateway_topics):
            out.add(settings_label, doc, ("topics",), "the six gateway topics must be distinct")
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
        if "name" in raw:  # the name is the file's: a `name` key is not one of the rule's
            keys = ", ".join(_valid_keys(SinkRule, ()))
            sink.add(("name",), f"unknown key; valid keys: {keys}")
        named = {**raw, "name": path.stem} if isinstance(sink_doc.value, dict) else sink_doc.value
        rule: SinkRule | None = out.validate(SinkRule, named, label, sink_doc)
        _check_field_rules(sink, rule, raw)
        _check_exceptions(sink)
        if isinstance(raw.get("topic"), str):
            topics.append((path.stem, raw["topic"], label, sink_doc))
        if rule is not None:
            _check_rule(rule, known_event_types, sink)
            rules.append(rule)
    _check_topics(_reserved_topics(settings, doc), topics, out)
    if out.problems or settings is None:
        raise ConfigError(sorted(out.problems, key=lambda p: (p.file, p.line, p.path)))
    return GatewayConfig(settings, tuple(rules), hasher.hexdigest()[:12])
