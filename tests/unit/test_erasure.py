"""Erasure notices in the pure core: who is notified, by which pseudonyms, and when."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import orjson
import pytest
import yaml

from gateway.config import GatewayConfig, load_config
from gateway.consent import ConsentOutcome, ConsentUpdate, Tombstone, apply_consent, parse_consent
from gateway.consent_state import ConsentState
from gateway.engine import Engine
from gateway.erasure import (
    ERASURE_REASONS,
    ErasureReason,
    carries_subject_pseudonym,
    child_without_parental_consent,
    erasable_sinks,
    erasure_reason,
)
from gateway.keys import Keyring, SinkKey, SinkKeys, load_keyring, pseudonymize
from gateway.records import HEADER_DEDUP_ID, HEADER_KEY_ID, HEADER_REASON, Output, Source
from tests.unit.conftest import CONFIG_DIR, key_env
from tests.unit.helpers import ALL_GRANTED, consent_state

SUBJECT = "subj-canary-1a2b3c"
SOURCE = Source("consent.state", 2, 41)


def _config_with_unkeyed_sink(tmp_path: Path) -> GatewayConfig:
    """The shipped config plus `counts`, an internal sink that never gets a subject pseudonym."""
    shutil.copytree(CONFIG_DIR, tmp_path / "config")
    rule = {
        "topic": "sink.counts",
        "audience": "internal",
        "purposes": ["analytics"],
        "kinds": ["usage"],
        "fields": {"event_type": "keep", "device_id": "pseudonym"},
    }
    (tmp_path / "config" / "sinks" / "counts.yaml").write_text(yaml.safe_dump(rule))
    return load_config(tmp_path / "config")


def _rotating_keyring(names: list[str]) -> Keyring:
    """Keys whose `ads` entry has a previous key too (a rotation in progress)."""
    keyring = load_keyring(key_env(names), names)
    sinks = dict(keyring.sinks)
    previous = SinkKey("k0-ads", b"\x09" * 32)
    sinks["ads"] = SinkKeys(sinks["ads"].current, previous)
    return Keyring(sinks)


def _record(updated_at: str, age: dict[str, bool]) -> ConsentUpdate:
    parsed = parse_consent(orjson.dumps({"updated_at": updated_at, "age": age}), b"s")
    assert isinstance(parsed, ConsentUpdate)
    return parsed


def test_when_rule_keys_or_maps_subject_to_pseudonym_then_it_carries_one(
    tmp_path: Path,
) -> None:
    config = _config_with_unkeyed_sink(tmp_path)
    carried = {rule.name: carries_subject_pseudonym(rule) for rule in config.sinks}
    assert carried == {"ads": True, "analytics": True, "counts": False, "social": True}
    unkeyed_but_mapped = config.sinks[0].model_copy(update={"key": "none"})
    assert carries_subject_pseudonym(unkeyed_but_mapped)


def test_when_tombstone_arrives_then_every_erasable_sink_gets_notice_tombstones_and_audit(
    tmp_path: Path,
) -> None:
    config = _config_with_unkeyed_sink(tmp_path)
    names = [rule.name for rule in config.sinks]
    keyring = _rotating_keyring(names)
    engine = Engine(config, keyring)
    notices = engine.records.erasure(SUBJECT, ErasureReason.SUBJECT_ERASED, 1234, SOURCE)
    assert notices.sinks == ("ads", "analytics", "social")  # never "counts"
    by_topic: dict[str, list[tuple[bytes | None, bytes | None, dict[str, bytes]]]] = {}
    for out in notices.outputs:
        by_topic.setdefault(out.topic, []).append((out.key, out.value, dict(out.headers)))
    assert "sink.counts" not in by_topic
    erasure = [orjson.loads(v or b"") for _, v, _ in by_topic["gateway.erasure"]]
    ads = next(n for n in erasure if n["sink"] == "ads")
    current, previous = keyring.sinks["ads"].current, keyring.sinks["ads"].previous
    assert previous is not None
    assert ads == {
        "sink": "ads",
        "sink_topic": "sink.ads",
        "reason": "subject_erased",
        "pseudonyms": [
            {"key_id": current.key_id, "pseudonym": pseudonymize(current.secret, SUBJECT)},
            {"key_id": previous.key_id, "pseudonym": pseudonymize(previous.secret, SUBJECT)},
        ],
        "consent_version": 1234,
        "config_version": config.version,
    }
    tombstones = by_topic["sink.ads"]
    assert [(k, v) for k, v, _ in tombstones] == [
        (pseudonymize(current.secret, SUBJECT).encode(), None),
        (pseudonymize(previous.secret, SUBJECT).encode(), None),
    ]
    assert [h[HEADER_KEY_ID] for _, _, h in tombstones] == [b"k1-ads", b"k0-ads"]
    assert {h[HEADER_REASON] for _, _, h in tombstones} == {b"subject_erased"}
    ids = [h[HEADER_DEDUP_ID] for _, _, h in tombstones]
    assert len(set(ids)) == 2  # a tombstone per key: consumers must not merge them
    audits = [orjson.loads(v or b"") for _, v, _ in by_topic["gateway.audit"]]
    assert [a["sink"] for a in audits] == ["ads", "analytics", "social"]
    assert audits[0]["key_ids"] == ["k1-ads", "k0-ads"]
    assert audits[0]["kind"] == "erasure"
    assert audits[0]["source"] == {"topic": "consent.state", "partition": 2, "offset": 41}
    text = b"".join((o.key or b"") + (o.value or b"") for o in notices.outputs)
    text += b"".join(v for o in notices.outputs for _, v in o.headers)
    assert SUBJECT.encode() not in text
    assert pseudonymize(current.secret, SUBJECT).encode() not in b"".join(
        v or b"" for _, v, _ in by_topic["gateway.audit"]
    )


def test_when_same_consent_record_is_redelivered_then_notice_ids_repeat(
    engine: Engine,
) -> None:
    first = engine.records.erasure(SUBJECT, ErasureReason.SUBJECT_ERASED, None, SOURCE)
    again = engine.records.erasure(SUBJECT, ErasureReason.SUBJECT_ERASED, None, SOURCE)
    later = engine.records.erasure(
        SUBJECT, ErasureReason.SUBJECT_ERASED, None, SOURCE._replace(offset=42)
    )

    def ids(outputs: list[Output]) -> list[bytes]:
        return [dict(o.headers).get(HEADER_DEDUP_ID, b"") for o in outputs]

    assert ids(first.outputs) == ids(again.outputs)
    assert set(ids(first.outputs)) - {b""} != set(ids(later.outputs)) - {b""}
    assert all(dict(o.headers)["gateway-consent-version"] == b"none" for o in first.outputs)
    assert repr(first).startswith("ErasureNotices(sinks=")


def test_when_record_makes_adult_a_child_without_parental_consent_then_child_discovered() -> None:
    adult = consent_state(ALL_GRANTED, updated_at="2026-11-26T12:00:00Z")
    child = consent_state(ALL_GRANTED, under_13=True, updated_at="2026-11-26T13:00:00Z")
    record = _record("2026-11-26T13:00:00Z", {"under_13": True})
    for before in (adult, None):
        _new, outcome = apply_consent(before, record)
        assert outcome is ConsentOutcome.APPLIED
        reason = erasure_reason(before, record, outcome, unknown_age_is_child=False)
        assert reason is ErasureReason.CHILD_DISCOVERED
    # already a child: nothing new to erase
    _, outcome = apply_consent(child - (1 << 16), record)
    assert erasure_reason(child - (1 << 16), record, outcome, unknown_age_is_child=False) is None
    # unknown age read as a child: the subject was treated as one already
    unknown = consent_state(ALL_GRANTED, under_13=None)
    _, outcome = apply_consent(unknown, record)
    assert erasure_reason(unknown, record, outcome, unknown_age_is_child=True) is None


def test_when_child_record_is_redelivered_after_it_was_applied_then_notices_go_out_again() -> None:
    record = _record("2026-11-26T13:00:00Z", {"under_13": True})
    new, _outcome = apply_consent(None, record)
    _again, stale = apply_consent(new, record)
    assert stale is ConsentOutcome.STALE
    assert erasure_reason(new, record, stale, unknown_age_is_child=False) == "child_discovered"
    newer = consent_state(None, under_13=True, updated_at="2026-11-27T00:00:00Z")
    _, stale = apply_consent(newer, record)
    assert erasure_reason(newer, record, stale, unknown_age_is_child=False) is None


def test_when_child_has_parental_consent_or_record_is_adult_then_no_notice() -> None:
    adult = consent_state(ALL_GRANTED)
    for age in ({"under_13": True, "parental_consent": True}, {"under_13": False}):
        record = _record("2026-11-27T00:00:00Z", age)
        _, outcome = apply_consent(adult, record)
        assert erasure_reason(adult, record, outcome, unknown_age_is_child=False) is None


def test_when_tombstone_then_subject_erased_known_or_not() -> None:
    for current in (None, consent_state(ALL_GRANTED)):
        reason = erasure_reason(
            current, Tombstone("s"), ConsentOutcome.TOMBSTONE, unknown_age_is_child=False
        )
        assert reason is ErasureReason.SUBJECT_ERASED
    assert ERASURE_REASONS == ("subject_erased", "child_discovered")


def test_child_without_parental_consent_reads_unknown_subjects_by_the_setting() -> None:
    assert not child_without_parental_consent(None, unknown_age_is_child=False)
    assert child_without_parental_consent(None, unknown_age_is_child=True)
    with_parent = consent_state(None, under_13=True, parental=True)
    assert not child_without_parental_consent(with_parent, unknown_age_is_child=False)


def test_when_keyring_lacks_a_sink_then_erasable_sinks_raises(config: GatewayConfig) -> None:
    with pytest.raises(KeyError):
        erasable_sinks(config, Keyring({}))
    names = [rule.name for rule in config.sinks]
    sinks = erasable_sinks(config, load_keyring(key_env(names), names))
    assert "secret" not in repr(sinks[0]) and base64.b64encode(b"\x01" * 32).decode() not in repr(
        sinks
    )
    assert ConsentState.record_bits(ConsentState.STICKY_GPC_BIT | 5) == 5
