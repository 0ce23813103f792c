"""Config loading: the shipped config passes; every kind of problem is reported at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.yamlnodes import LoadedYaml, Problem
from tests.unit.conftest import CONFIG_DIR


def test_when_default_config_is_loaded_then_three_sinks_pass(config: GatewayConfig) -> None:
    assert [rule.name for rule in config.sinks] == ["ads", "analytics", "social"]
    assert config.settings.topics.usage_raw == "events.usage.raw"
    assert config.settings.topics.device_raw == "events.device.raw"
    assert config.settings.topics.consent == "consent.state"
    assert config.settings.topics.dlq == "gateway.dlq"
    assert config.settings.topics.audit == "gateway.audit"
    assert config.settings.unknown_age == "adult"
    assert config.settings.honour_dnt is False
    assert config.settings.max_event_bytes == 65536
    assert len(config.version) == 12


def test_when_config_is_copied_then_version_is_stable_and_changes_with_content(
    tmp_path: Path,
) -> None:
    shutil.copytree(CONFIG_DIR, tmp_path / "c")
    assert load_config(tmp_path / "c").version == load_config(CONFIG_DIR).version
    settings = tmp_path / "c" / "gateway.yaml"
    settings.write_text(settings.read_text() + "\n# a comment\n")
    assert load_config(tmp_path / "c").version != load_config(CONFIG_DIR).version


SETTINGS = """\
topics:
  usage_raw: events.usage.raw
  device_raw: events.device.raw
  consent: consent.state
  dlq: gateway.dlq
  audit: gateway.audit
unknown_age: teenager
honour_dnt: "yes"
colour: blue
"""
BROKEN = """\
topic: sink.broken
audience: internal
purposes: [analytics, astrology]
kinds: [usage]
fields:
  ip: keep
  page: {op: url_clean, keep_query: [q]}
  device_id: {op: hash}
  cookie_id: {op: pseudonym, salt: x}
  occurred_at: {op: timestamp, unit: week}
  shoe_size: keep
  user_agent: {unit: hour}
  event_id: keep
  event_id: drop
"""
CLASH = """\
topic: gateway.dlq
audience: advertising
purposes: [advertising]
unknown_consent: grant
kinds: [usage]
fields:
  event_type: keep
"""
DOUBLE_A = (
    "topic: sink.same\naudience: internal\npurposes: [analytics]\nkinds: [usage]\n"
    "fields: {event_type: keep}\n"
)
SYNTAX = "topic: sink.x\nfields: [unclosed\n"
MISSING = "audience: internal\n"


def _write(root: Path, files: dict[str, str]) -> Path:
    (root / "sinks").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_when_config_has_every_kind_of_error_then_all_are_reported_with_file_and_line(
    tmp_path: Path,
) -> None:
    root = _write(
        tmp_path,
        {
            "gateway.yaml": SETTINGS,
            "sinks/broken.yaml": BROKEN,
            "sinks/clash.yaml": CLASH,
            "sinks/same_a.yaml": DOUBLE_A,
            "sinks/same_b.yaml": DOUBLE_A,
            "sinks/syntax.yaml": SYNTAX,
            "sinks/missing.yaml": MISSING,
            "sinks/Bad-Name.yaml": DOUBLE_A.replace("sink.same", "sink.other"),
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    found = {(Path(p.file).name, p.line, p.path) for p in caught.value.problems}
    messages = "\n".join(str(p) for p in caught.value.problems)
    expected = {
        ("gateway.yaml", 7, "unknown_age"),
        ("gateway.yaml", 8, "honour_dnt"),
        ("gateway.yaml", 9, "colour"),
        ("broken.yaml", 3, "purposes.1"),
        ("broken.yaml", 6, "fields.ip"),
        ("broken.yaml", 8, "fields.device_id.op"),
        ("broken.yaml", 9, "fields.cookie_id.salt"),
        ("broken.yaml", 10, "fields.occurred_at.unit"),
        ("broken.yaml", 11, "fields.shoe_size"),
        ("broken.yaml", 12, "fields.user_agent.op"),
        ("broken.yaml", 14, "fields.event_id"),
        ("clash.yaml", 1, "topic"),
        ("clash.yaml", 4, "unknown_consent"),
        ("same_b.yaml", 1, "topic"),
        ("syntax.yaml", 3, "."),
        ("missing.yaml", 1, "topic"),
        ("missing.yaml", 1, "fields"),
        ("Bad-Name.yaml", 1, "."),
    }
    assert expected <= found, messages
    assert "valid keys: " in messages
    assert "valid operators: drop, ip_truncate, keep, pseudonym, redact" in messages
    assert "duplicate key (first at line 13)" in messages
    assert "is the gateway's dlq topic" in messages
    assert "also written by sink 'same_a'" in messages
    assert "not allowed on ip field 'ip'; use one of: drop, ip_truncate, pseudonym" in messages
    assert "YAML syntax error" in messages


def test_when_problem_is_printed_then_it_reads_file_line_path_message() -> None:
    problem = Problem("config/sinks/ads.yaml", 7, "fields.ip.op", "unknown operator 'x'")
    assert str(problem) == "config/sinks/ads.yaml:7: fields.ip.op: unknown operator 'x'"


def test_when_files_are_missing_or_empty_then_that_is_reported(tmp_path: Path) -> None:
    (tmp_path / "sinks").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    messages = [p.message for p in caught.value.problems]
    assert any("cannot read file" in m for m in messages)
    assert "no sink rules (*.yaml)" in messages
    (tmp_path / "gateway.yaml").write_text("")
    (tmp_path / "sinks" / "x.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    messages = [p.message for p in caught.value.problems]
    assert "file is empty" in messages
    assert "file is not valid UTF-8" in messages


def test_when_topics_collide_or_keys_are_not_scalars_then_that_is_reported(
    tmp_path: Path,
) -> None:
    settings = SETTINGS.replace("gateway.audit", "gateway.dlq").split("unknown_age")[0]
    sink = DOUBLE_A + "? [a, b]\n: 1\n"
    root = _write(tmp_path, {"gateway.yaml": settings, "sinks/a.yaml": sink})
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    messages = "\n".join(str(p) for p in caught.value.problems)
    assert "gateway.yaml:1: topics: the six gateway topics must be distinct" in messages
    assert "a.yaml:6: .: mapping keys must be plain scalars" in messages


def test_when_nested_key_or_field_spec_is_wrong_then_it_is_reported(tmp_path: Path) -> None:
    sink = DOUBLE_A.replace("fields: {event_type: keep}", "fields: {event_type: 5}")
    root = _write(tmp_path, {"gateway.yaml": "topics: {colour: x}\n", "sinks/a.yaml": sink})
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    messages = "\n".join(str(p) for p in caught.value.problems)
    assert "gateway.yaml:1: topics.colour: unknown key; valid keys: audit, consent," in messages
    assert "a.yaml:5: fields.event_type: must be an operator name or a mapping" in messages
    assert LoadedYaml(None, {}).line_of(("x", "y")) == 1
