"""Compiled sink plans: what a plan leaves out, copies, and adds (key id, record key)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import engine as engine_module
from gateway.config import load_config
from gateway.decision import Verdict
from gateway.engine import KEY_ID_FIELD, Engine
from gateway.events import REQUIRED_FIELDS
from gateway.keys import Keyring, load_keyring
from gateway.operators import DROP
from gateway.plan import Ops
from gateway.reasons import Reason
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
    names = [name for name, _ in plan.full_ops]
    assert names == ["event_type", "device_type", "browser"]
    assert dict(plan.full_ops)["device_type"] is None
    assert [n for n, _ in plan.full_ops] == [n for n, _ in plan.safe_ops]


def test_when_identifiers_are_not_allowed_then_no_identifier_operator_is_compiled(
    engine: Engine,
) -> None:
    analytics = engine.plans[1]
    safe = {name for name, _ in analytics.safe_ops}
    assert not safe & {"subject_id", "device_id", "cookie_id", "ip", "advertising_id"}
    assert {"subject_id", "device_id", "cookie_id", "ip"} <= {n for n, _ in analytics.full_ops}


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


def _loop_reference(ops: Ops, fields: dict[str, Any]) -> dict[str, Any]:
    output = {}
    for name, apply in ops:
        if name in fields:
            result = fields[name] if apply is None else apply(fields[name])
            if result is not DROP:
                output[name] = result
    return output


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.sampled_from(sorted(event_dict())), max_size=8))
def test_when_fields_are_missing_then_generated_builder_equals_the_plain_loop(
    engine: Engine, missing: set[str]
) -> None:
    overrides: dict[str, Any] = dict.fromkeys(missing - {*REQUIRED_FIELDS, "ip"})
    overrides["ip"] = "not-an-address" if "ip" in missing else "192.0.2.1"  # a dropped value
    fields = make_event(**overrides).fields
    for plan in engine.plans:
        assert plan.build_full(fields.get) == _loop_reference(plan.full_ops, fields)
        assert plan.build_safe(fields.get) == _loop_reference(plan.safe_ops, fields)
        assert "def build(get):" in plan.full_source
