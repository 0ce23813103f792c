"""The engine's outputs: allowlists, keys, audit and DLQ records, purity of the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson

from gateway.config import load_config
from gateway.consent_state import ConsentState
from gateway.engine import KEY_ID_FIELD, Engine
from gateway.events import EventKind, Invalid, parse_event
from gateway.keys import Keyring
from gateway.plan import make_pseudonymizer
from gateway.reasons import Reason
from gateway.records import Source
from tests.unit.conftest import CONFIG_DIR, ROOT
from tests.unit.helpers import ALL_GRANTED, consent_state, make_event

CANARIES = ("subj-canary-1a2b3c", "canary-dev-7f3a9c", "canary-ck-4e5d6f", "192.0.2.77")


def test_when_forwarded_then_only_allowlisted_fields_leave(engine: Engine) -> None:
    ads, analytics, social = engine.decide(make_event(), consent_state(ALL_GRANTED))
    assert analytics.output is not None
    assert set(analytics.output) <= {
        "event_id",
        "event_type",
        "occurred_at",
        "subject_id",
        "device_id",
        "cookie_id",
        "ip",
        "user_agent",
        "page",
        "referrer",
        "device_type",
        "properties",
        KEY_ID_FIELD,
    }
    assert analytics.output["properties"] == {"experiment": "hero"}
    assert analytics.output["ip"] == "192.0.2.0"
    assert analytics.output[KEY_ID_FIELD] == analytics.key_id == "k1-analytics"
    assert ads.output is not None
    assert set(ads.output) == {
        "event_type",
        "occurred_at",
        "subject_id",
        "advertising_id",
        "page",
        "user_agent",
        "device_type",
        KEY_ID_FIELD,
    }
    assert social.value == orjson.dumps(social.output)
    assert social.key == social.output["subject_id"].encode()  # type: ignore[index]


def test_when_child_without_parental_consent_then_no_key_and_no_identifier(engine: Engine) -> None:
    decisions = engine.decide(make_event(), consent_state(ALL_GRANTED, under_13=True))
    analytics = decisions[1]
    assert analytics.reason is Reason.CONSENTED_CHILD_NO_IDENTIFIERS
    assert analytics.key is None
    assert analytics.key_id is None
    assert analytics.output is not None
    assert not {"subject_id", "ip", "device_id", "cookie_id", "properties"} & set(analytics.output)


def test_when_ads_lacks_sharing_consent_then_it_gets_usage_information_only(
    engine: Engine,
) -> None:
    ads = engine.decide(make_event(), consent_state({"advertising": True}))[0]
    assert ads.reason is Reason.CONSENTED_NO_IDENTIFIERS
    assert ads.key is None
    assert ads.output == {
        "event_type": "page_view",
        "occurred_at": "2026-11-26T12:00:00Z",
        "page": "https://www.example.com/products",
        "user_agent": {"browser": "Chrome", "major": "120", "os": "Windows"},
        "device_type": "desktop",
    }


def test_when_audit_record_is_written_then_it_holds_no_identifier(engine: Engine) -> None:
    event = make_event()
    state = consent_state({"analytics": True})
    for decision in engine.decide(event, state):
        output = engine.records.audit(
            event, decision, Source("events.usage.raw", 3, 42), ConsentState.version(state)
        )
        record = output.value
        assert record is not None
        data = orjson.loads(record)
        assert data["reason"] == decision.reason.value
        assert data["source"] == {"topic": "events.usage.raw", "partition": 3, "offset": 42}
        assert data["config_version"] == engine.version
        assert data["consent_version"] == 1795694400000000
        for canary in CANARIES:
            assert canary not in record.decode()
        if decision.key is not None:
            assert decision.key.decode() not in record.decode()
    assert ConsentState.version(None) is None


def test_when_dlq_record_is_written_then_it_is_redacted(engine: Engine) -> None:
    invalid = parse_event(b'{"ip": "192.0.2.77", "ip": "x"}', b"k", EventKind.USAGE, max_bytes=99)
    assert isinstance(invalid, Invalid)
    record = engine.records.dlq(invalid, Source("events.usage.raw", 0, 7)).value
    assert record is not None
    assert b"192.0.2.77" not in record
    assert orjson.loads(record)["reason"] == "duplicate_key"
    assert "192.0.2" not in repr(invalid)


def test_when_engine_and_decisions_are_repr_then_no_payload_or_key_shows(
    engine: Engine, keyring: Keyring
) -> None:
    decisions = engine.decide(make_event(), consent_state(ALL_GRANTED))
    text = repr(engine) + repr(decisions) + repr(keyring) + repr(engine.plans[0].pseudonymize)
    for canary in CANARIES:
        assert canary not in text
    assert all(d.key is None or d.key.decode() not in text for d in decisions)


def test_when_pseudonym_cache_is_full_then_it_is_cleared_and_results_stay_equal(
    engine: Engine,
) -> None:
    tiny = make_pseudonymizer(b"k" * 32, 2)
    first = [tiny(f"id-{i}") for i in range(5)]
    assert first == [tiny(f"id-{i}") for i in range(5)]
    assert make_pseudonymizer(b"k" * 32, 0)("x") == tiny("x")


def test_when_gateway_is_imported_then_faust_and_aiokafka_are_not_loaded() -> None:
    code = (
        "import pkgutil, importlib, sys, gateway\n"
        "for m in pkgutil.walk_packages(gateway.__path__, 'gateway.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('faust', 'aiokafka', 'topologies')]\n"
        "print(len(list(pkgutil.walk_packages(gateway.__path__))), bad)\n"
        "raise SystemExit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_when_property_operator_drops_every_value_then_no_properties_are_sent(
    tmp_path: Path, keyring: Keyring
) -> None:
    shutil.copytree(CONFIG_DIR, tmp_path / "c")
    rule = tmp_path / "c" / "sinks" / "analytics.yaml"
    rule.write_text(rule.read_text() + "  link: url_clean\n")
    engine = Engine(load_config(tmp_path / "c"), keyring)
    state = consent_state(ALL_GRANTED)
    out = engine.decide(make_event(properties={"link": 5}), state)[1].output
    assert out is not None
    assert "properties" not in out
    out = engine.decide(make_event(properties={"link": "https://www.example.com/?a=1"}), state)[1]
    assert out.output is not None
    assert out.output["properties"] == {"link": "https://www.example.com/"}
