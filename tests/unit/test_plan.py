"""Compiled sink plans: what a plan leaves out, copies, and adds (key id, record key)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import engine as engine_module
from gateway.config import load_config
from gateway.config_models import (
    ALLOWLISTABLE_FIELDS,
    CONTRACT_EVENT_TYPES,
    SinkRule,
    field_class,
)
from gateway.decision import Verdict
from gateway.engine import KEY_ID_FIELD, Engine
from gateway.events import IDENTIFIER_FIELDS, REQUIRED_FIELDS, Event
from gateway.keys import Keyring, load_keyring
from gateway.operators import DROP, OPERATORS, OperatorTools
from gateway.reasons import Reason
from gateway.useragent import default_user_agent_parser
from tests.unit.conftest import CONFIG_DIR, key_env
from tests.unit.helpers import ALL_GRANTED, consent_state, event_dict, make_event

UNLINKED_SINK = """\
topic: sink.counts
audience: internal
purposes: [analytics]
kinds: [usage]
fields:
  event_type: keep
  device_type: keep
  ip: drop
  browser: {op: redact, replacement: "[x]"}
properties:
  note: keep
"""


def _engine_with(tmp_path: Path, keyring: Keyring, name: str, rule: str) -> Engine:
    shutil.copytree(CONFIG_DIR, tmp_path / "c")
    (tmp_path / "c" / "sinks" / f"{name}.yaml").write_text(rule)
    names = [*keyring.sinks, name]
    return Engine(load_config(tmp_path / "c"), load_keyring(key_env(names), names))


def test_when_sink_has_no_pseudonym_then_output_names_no_key_and_record_has_no_key(
    tmp_path: Path, keyring: Keyring
) -> None:
    engine = _engine_with(tmp_path, keyring, "counts", UNLINKED_SINK)
    event = make_event(browser="Chrome", properties={"note": None, "other": 1})
    decisions = engine.decide(event, consent_state(ALL_GRANTED))
    counts = next(d for d in decisions if d.sink == "counts")
    assert counts.reason is Reason.CONSENTED
    assert counts.verdict is Verdict.FORWARD
    assert counts.key is None
    assert counts.key_id is None
    assert counts.output == {
        "event_type": "page_view",
        "device_type": "desktop",
        "browser": "[x]",
        "properties": {"note": None},
    }
    assert KEY_ID_FIELD not in counts.output


def test_when_fields_are_compiled_then_drop_fields_are_left_out_and_keep_fields_are_copied(
    tmp_path: Path, keyring: Keyring
) -> None:
    engine = _engine_with(tmp_path, keyring, "counts", UNLINKED_SINK)
    plan = next(p for p in engine.plans if p.name == "counts")
    names = [op.name for op in plan.full_ops]
    assert names == ["event_type", "device_type", "browser"]
    assert {op.name: op.apply for op in plan.full_ops}["device_type"] is None
    assert [op.name for op in plan.full_ops] == [op.name for op in plan.safe_ops]


def test_when_identifiers_are_not_allowed_then_no_identifier_operator_is_compiled(
    engine: Engine,
) -> None:
    analytics = engine.plans[1]
    safe = {op.name for op in analytics.safe_ops}
    assert not safe & {"subject_id", "device_id", "cookie_id", "ip", "advertising_id"}
    assert {"subject_id", "device_id", "cookie_id", "ip"} <= {op.name for op in analytics.full_ops}


def test_when_an_operator_drops_a_value_then_the_field_is_absent(engine: Engine) -> None:
    analytics = engine.decide(make_event(ip="not-an-address"), consent_state(ALL_GRANTED))[1]
    assert analytics.output is not None
    assert "ip" not in analytics.output
    assert analytics.output["device_type"] == "desktop"


def test_when_the_record_key_is_made_then_it_equals_the_subject_pseudonym(engine: Engine) -> None:
    ads, analytics, social = engine.decide(make_event(), consent_state(ALL_GRANTED))
    for decision in (ads, analytics, social):
        assert decision.output is not None
        assert decision.key == decision.output["subject_id"].encode()
    assert len({ads.key, analytics.key, social.key}) == 3  # one key per sink: no joins


def test_when_route_cache_is_full_then_it_is_cleared_and_decisions_stay_equal(
    engine: Engine, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    states = [consent_state(ALL_GRANTED), consent_state({"analytics": True}), None]
    expected = [engine.decide(make_event(), state) for state in states]
    monkeypatch.setattr(engine_module, "ROUTE_CACHE_SIZE", 1)
    fresh = Engine(engine.config, keyring)
    for _ in range(2):
        assert [fresh.decide(make_event(), state) for state in states] == expected
    assert len(fresh._routes) == 1


KEYED_WITHOUT_SUBJECT = """\
topic: sink.keyed
audience: internal
purposes: [analytics]
key: pseudonym
kinds: [usage]
fields:
  event_type: keep
  subject_id: {op: redact, replacement: "[s]"}
"""


def test_when_subject_is_not_pseudonymized_in_output_then_record_key_still_is(
    tmp_path: Path, keyring: Keyring
) -> None:
    engine = _engine_with(tmp_path, keyring, "keyed", KEYED_WITHOUT_SUBJECT)
    decisions = engine.decide(make_event(), consent_state(ALL_GRANTED))
    keyed = next(d for d in decisions if d.sink == "keyed")
    plan = next(p for p in engine.plans if p.name == "keyed")
    assert keyed.output == {"event_type": "page_view", "subject_id": "[s]"}
    assert keyed.key == plan.pseudonymize("subj-canary-1a2b3c").encode()
    assert keyed.key_id is not None


OPS_OF_CLASS = {
    klass: sorted(n for n, cls in OPERATORS.items() if klass in cls.field_classes and n != "drop")
    for klass in ("plain", "identifier", "ip", "url", "user_agent", "timestamp", "property")
}
OPTIONS: dict[str, list[dict[str, Any]]] = {
    "redact": [{}, {"replacement": "[x]"}],
    "ip_truncate": [{}, {"ipv4_prefix": 16, "ipv6_prefix": 32}],
    "url_clean": [{}, {"keep_query": ["utm_source"]}],
    "timestamp": [{"unit": unit} for unit in ("minute", "hour", "day")],
}


@st.composite
def sink_rules(draw: st.DrawFn) -> str:
    """A random valid sink rule (YAML): any allowlisted fields with operators their class takes."""
    names = draw(st.lists(st.sampled_from(sorted(ALLOWLISTABLE_FIELDS)), min_size=1, unique=True))
    audience = draw(st.sampled_from(["internal", "advertising"]))
    fields = {}
    for name in names:
        op = draw(st.sampled_from([*OPS_OF_CLASS[field_class(name)], "drop"]))
        fields[name] = {"op": op, **draw(st.sampled_from(OPTIONS.get(op, [{}])))}
    properties = {"note": {"op": draw(st.sampled_from(OPS_OF_CLASS["property"]))}}
    rule = {"topic": "sink.random", "audience": audience, "purposes": ["analytics"]}
    rule |= {"kinds": ["usage", "device"], "fields": fields, "properties": properties}
    rule["identifier_purposes"] = draw(st.sampled_from([[], ["advertising"]]))
    return orjson.dumps(rule).decode()  # JSON is YAML


def reference_output(rule: SinkRule, tools: OperatorTools, event: Event, full: bool) -> Any:
    """What a sink gets, read straight off the rule: each listed field through its operator
    (its text for occurred_at), nothing compiled; without identifiers (`full` False) no
    identifier field and no pseudonym; the event type as its label; properties likewise."""
    output: dict[str, Any] = {}
    for name, config in rule.fields.items():
        operator = OPERATORS[config.op](config, tools)
        linked = operator.linkable or name in IDENTIFIER_FIELDS
        if name in event.fields and (full or not linked):
            value = event.fields[name]
            if name == "event_type" and config.op == "keep":
                result = value if value in KNOWN else "other"
            else:
                result = operator.apply(value)
            if result is not DROP:
                output[name] = result
    kept = {}
    for name, config in rule.properties.items():
        if full and name in event.fields.get("properties", {}):
            result = OPERATORS[config.op](config, tools).apply(event.fields["properties"][name])
            if result is not DROP:
                kept[name] = result
    if kept:
        output["properties"] = kept
    if full and any(OPERATORS[c.op].linkable for c in rule.field_rules().values()):
        output[KEY_ID_FIELD] = tools.key_id
    return output


KNOWN = frozenset(CONTRACT_EVENT_TYPES)
EVENT_VALUES = {
    "occurred_at": st.sampled_from(
        ["2026-11-26T12:34:56.789Z", "2016-12-31T23:59:60Z", "2026-11-26t12:34:56+05:30"]
    ),
    "ip": st.sampled_from(["192.0.2.77", "2001:db8::77", "::ffff:192.0.2.77", "nope"]),
    "event_type": st.sampled_from(["page_view", "Checkout"]),
    "page": st.sampled_from(["https://www.example.com/a/12345678?utm_source=x&b=2#f", "/p"]),
}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(sink_rules(), st.sets(st.sampled_from(sorted(event_dict())), max_size=6), st.data())
def test_when_a_random_rule_meets_a_random_event_then_the_plan_equals_the_reference(
    tmp_path_factory: pytest.TempPathFactory, rule_text: str, missing: set[str], data: st.DataObject
) -> None:
    keyring = load_keyring(
        key_env(["ads", "analytics", "social", "random"]), ["ads", "analytics", "social", "random"]
    )
    engine = _engine_with(tmp_path_factory.mktemp("c"), keyring, "random", rule_text)
    plan = next(p for p in engine.plans if p.name == "random")
    overrides: dict[str, Any] = dict.fromkeys(missing - {*REQUIRED_FIELDS})
    overrides |= {k: data.draw(v) for k, v in EVENT_VALUES.items() if k not in missing}
    overrides["properties"] = data.draw(st.sampled_from([{"note": None}, {"note": "a"}, {}]))
    event = make_event(**overrides)
    tools = OperatorTools(plan.pseudonymize, plan.key_id, default_user_agent_parser)
    for reason in (Reason.CONSENTED, Reason.CONSENTED_NO_IDENTIFIERS):
        decision = plan.forward(event, reason, None)
        expected = reference_output(plan.rule, tools, event, reason is Reason.CONSENTED)
        assert decision.output == expected
