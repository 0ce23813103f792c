"""The worker's settings: every variable typed, bounded, documented; every problem at once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from topologies.app import Tuning
from topologies.cli import build_parser
from topologies.settings import (
    SettingsError,
    WorkerSettings,
    environment_rows,
    load_settings,
    variable,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in WorkerSettings.model_fields:
        monkeypatch.delenv(variable(name), raising=False)


def test_when_nothing_is_set_then_the_broker_is_kafkas_usual_loopback_port() -> None:
    settings = load_settings()
    assert settings.bootstrap == "127.0.0.1:9092"
    assert settings.config_dir == Path("config")
    assert settings.metrics_port == 9108
    assert Tuning.from_settings(settings) == Tuning()


def test_when_variables_are_set_then_they_are_typed_and_the_options_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka.example.com:9092")
    monkeypatch.setenv("GATEWAY_PARTITIONS", "12")
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("GATEWAY_COMMIT_INTERVAL", "0.5")
    monkeypatch.setenv("GATEWAY_METRICS_PORT", "9200")
    settings = load_settings(metrics_port=9300, config_dir=Path("elsewhere"))
    assert (settings.bootstrap, settings.partitions) == ("kafka.example.com:9092", 12)
    assert (settings.log_level, settings.commit_interval) == ("warning", 0.5)
    assert (settings.metrics_port, settings.config_dir) == (9300, Path("elsewhere"))
    assert Tuning.from_settings(settings).commit_interval == 0.5


def test_when_several_values_are_bad_then_each_is_named_and_no_value_is_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_PARTITIONS", "six")
    monkeypatch.setenv("GATEWAY_LINGER_MS", "-1")
    monkeypatch.setenv("GATEWAY_METRICS_PORT", "70000")
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "s3cr3t-value")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    names = [problem.split(":")[0] for problem in caught.value.problems]
    assert sorted(names) == sorted(
        ["GATEWAY_PARTITIONS", "GATEWAY_LINGER_MS", "GATEWAY_METRICS_PORT", "GATEWAY_LOG_LEVEL"]
    )
    assert "s3cr3t" not in str(caught.value)
    assert "six" not in str(caught.value)


def test_when_gateway_run_gets_bad_values_then_it_prints_every_problem_and_exits_2() -> None:
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_PARTITIONS": "six", "GATEWAY_LINGER_MS": "-1"}
    result = subprocess.run(
        [sys.executable, "-m", "topologies.cli", "run"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "GATEWAY_PARTITIONS: Input should be a valid integer" in result.stderr
    assert "GATEWAY_LINGER_MS: Input should be greater than or equal to 0" in result.stderr
    assert "six" not in result.stderr


def test_when_run_help_is_shown_then_every_variable_has_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, default, _ in environment_rows():
        assert name in text
        assert re.search(rf"{re.escape(name)} .*?\(default {re.escape(default)}\)", text), name


def test_when_the_readme_lists_the_environment_then_every_setting_has_its_row() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name, default, meaning in environment_rows():
        assert f"| `{name}` | `{default}` | {meaning} |" in readme, f"README row of {name}"


def test_when_a_field_is_declared_then_it_has_a_variable_a_description_and_a_unit_if_numeric() -> (
    None
):
    for name, field in WorkerSettings.model_fields.items():
        assert re.fullmatch(r"(GATEWAY|KAFKA)_[A-Z_]+", variable(name)), name
        assert field.description, name
        if field.annotation in (int, float) and name not in {"partitions"}:
            unit = ("port", "records", "milliseconds", "bytes", "seconds", "batches")
            assert any(word in field.description for word in unit), name


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("s3cr3t-host-no-port", "the server has no port"),
        ("s3cr3t:notaport", "the server has a port that is not a number"),
        ("s3cr3t:99999", "the server has a port outside 1-65535"),
        ("s3cr3t:0", "the server has a port outside 1-65535"),
        ("s3cr3t:1,,", "server 2 of 3 is empty"),
        (" ", "the server is empty"),
        (":9092", "the server has no host"),
        (
            "s3cr3t:9092,::1:9092",
            "server 2 of 2 has an IPv6 address without brackets ([address]:port)",
        ),
        ("[::1:9092", "the server has an IPv6 address without its closing bracket"),
    ],
)
def test_when_kafka_bootstrap_is_not_a_host_port_list_then_it_is_named_without_its_value(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == [
        f"KAFKA_BOOTSTRAP: {problem}; expected host:port[,host:port...]"
    ]
    assert "s3cr3t" not in str(caught.value)
    assert "9092" not in str(caught.value)


def test_when_kafka_bootstrap_lists_servers_then_spaces_around_them_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", " kafka-1:9092, kafka-2:9093 ,[::1]:9094")
    assert load_settings().bootstrap == "kafka-1:9092,kafka-2:9093,[::1]:9094"


def test_when_gateway_run_gets_a_bad_bootstrap_then_exit_2_without_the_value() -> None:
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP": "s3cr3t-host:notaport"}
    result = subprocess.run(
        [sys.executable, "-m", "topologies.cli", "run", "--demo"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "KAFKA_BOOTSTRAP: the server has a port that is not a number" in result.stderr
    assert "s3cr3t" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("app_id", ["", "two words", "-gw", "gw/x"])
def test_when_gateway_app_id_cannot_name_groups_and_topics_then_it_is_refused(
    monkeypatch: pytest.MonkeyPatch, app_id: str
) -> None:
    monkeypatch.setenv("GATEWAY_APP_ID", app_id)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert [p.split(":")[0] for p in caught.value.problems] == ["GATEWAY_APP_ID"]


def test_when_nothing_chooses_a_consent_store_then_it_is_the_memory_store() -> None:
    store = Tuning.from_settings(load_settings()).consent_store
    assert (store.kind, store.directory) == ("memory", Path("consent-store"))
    assert store.cache_bytes == 256 * 1024 * 1024


def test_when_the_rocksdb_store_is_chosen_then_its_directory_and_cache_reach_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_CONSENT_STORE", "RocksDB")
    monkeypatch.setenv("GATEWAY_CONSENT_STORE_DIR", "/var/lib/gateway/consent")
    monkeypatch.setenv("GATEWAY_CONSENT_STORE_CACHE_BYTES", str(64 * 1024 * 1024))
    store = Tuning.from_settings(load_settings()).consent_store
    assert store.kind == "rocksdb"
    assert store.directory == Path("/var/lib/gateway/consent")
    assert store.cache_bytes == 64 * 1024 * 1024


def test_when_the_consent_store_settings_are_bad_then_each_is_named_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_CONSENT_STORE", "s3cr3t-redis")
    monkeypatch.setenv("GATEWAY_CONSENT_STORE_CACHE_BYTES", "1024")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert sorted(p.split(":")[0] for p in caught.value.problems) == [
        "GATEWAY_CONSENT_STORE", "GATEWAY_CONSENT_STORE_CACHE_BYTES",
    ]  # fmt: skip
    assert "s3cr3t" not in str(caught.value)
