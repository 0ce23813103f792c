"""`gateway rules check` and `gateway explain`, run through argparse as the console script does."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from gateway.cli import register
from gateway.strictjson import MAX_DEPTH
from tests.unit.conftest import CONFIG_DIR, key_env

SAMPLES = CONFIG_DIR / "samples"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gateway")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_when_default_config_is_checked_then_it_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["rules", "check", "--config", str(CONFIG_DIR)]) == 0
    assert capsys.readouterr().out.startswith("ok: 3 sinks, config version ")


def test_when_config_is_broken_then_check_lists_problems_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sinks").mkdir()
    (tmp_path / "gateway.yaml").write_text("colour: blue\n")
    assert run(["rules", "check", "--config", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "gateway.yaml:1: colour: unknown key" in err
    assert run(["explain", "--event", "x", "--config", str(tmp_path)]) == 1


def test_when_explaining_sample_then_each_sink_gets_verdict_reason_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["explain", "--event", str(SAMPLES / "usage_event.json"), "--config", str(CONFIG_DIR)]
    assert run([*argv, "--consent", str(SAMPLES / "adult_consent.json")]) == 0
    captured = capsys.readouterr()
    result = orjson.loads(captured.out)
    assert set(result) == {"ads", "analytics", "social"}
    assert result["ads"]["reason"] == "consented_no_identifiers"
    assert result["social"] == {"verdict": "drop", "reason": "consent_denied", "output": None}
    assert "demo keys" in captured.err
    assert "pat@example.com" not in captured.out


def test_when_explaining_child_device_event_then_identifiers_are_gone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in key_env(["ads", "analytics", "social"]).items():
        monkeypatch.setenv(name, value)
    argv = ["explain", "--event", str(SAMPLES / "device_event.json"), "--topic", "device"]
    code = run(
        [*argv, "--consent", str(SAMPLES / "child_consent.json"), "--config", str(CONFIG_DIR)]
    )
    assert code == 0
    captured = capsys.readouterr()
    analytics = orjson.loads(captured.out)["analytics"]
    assert analytics["reason"] == "consented_child_no_identifiers"
    assert "dev-8c2b7a61" not in captured.out
    assert captured.err == ""


def test_when_inputs_are_invalid_then_explain_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    assert run(["explain", "--event", str(bad), "--config", str(CONFIG_DIR)]) == 2
    assert "not_object" in capsys.readouterr().out
    bad.write_text("{")
    assert run(["explain", "--event", str(bad), "--config", str(CONFIG_DIR)]) == 2
    event = str(SAMPLES / "usage_event.json")
    argv = ["explain", "--event", event, "--consent", str(bad), "--config", str(CONFIG_DIR)]
    assert run(argv) == 2
    monkeypatch.setenv("GATEWAY_KEY_ADS", "broken")
    assert run(["explain", "--event", event, "--config", str(CONFIG_DIR)]) == 1
    assert "key error: GATEWAY_KEY_ADS" in capsys.readouterr().err


def test_when_no_consent_is_given_then_every_sink_fails_closed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["explain", "--event", str(SAMPLES / "usage_event.json"), "--config", str(CONFIG_DIR)]
    assert run([*argv, "--demo-keys"]) == 0
    result = orjson.loads(capsys.readouterr().out)
    assert {sink["reason"] for sink in result.values()} == {"consent_unknown"}


def test_when_an_event_is_nested_to_the_validators_limit_then_explain_prints_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    nested: list[object] = []
    for _ in range(MAX_DEPTH - 3):  # the event, `properties` and the lists: MAX_DEPTH levels
        nested = [nested]
    event = orjson.loads((SAMPLES / "usage_event.json").read_bytes())
    event["properties"] = {"experiment": nested}
    path = tmp_path / "deep.json"
    path.write_bytes(orjson.dumps(event))
    argv = ["explain", "--event", str(path), "--config", str(CONFIG_DIR)]
    assert run([*argv, "--consent", str(SAMPLES / "adult_consent.json")]) == 0
    result = orjson.loads(capsys.readouterr().out)
    assert result["analytics"]["output"]["properties"]["experiment"] == nested


def test_when_an_input_file_is_missing_then_explain_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["explain", "--event", str(tmp_path / "nope.json"), "--config", str(CONFIG_DIR)]
    assert run(argv) == 2
    assert "cannot read the event file" in capsys.readouterr().err
    argv = ["explain", "--event", str(SAMPLES / "usage_event.json"), "--config", str(CONFIG_DIR)]
    assert run([*argv, "--consent", str(tmp_path / "nope.json")]) == 2
    assert "cannot read the consent file" in capsys.readouterr().err
