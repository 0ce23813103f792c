"""Key rotation on SIGHUP: new keys from the re-read key file, all or nothing with the rules."""

from __future__ import annotations

import base64
import logging
import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.config import load_config
from gateway.engine import Engine
from gateway.keys import Keyring, load_keyring
from topologies.reload import ConfigReloader
from topologies.worker import build_metrics

REPO = Path(__file__).resolve().parents[2]
SINKS = ("analytics", "ads", "social")


def write_keys(path: Path, key_id: str, byte: bytes, *, mode: int = 0o600) -> None:
    key = base64.b64encode(byte * 32).decode()
    path.write_text("".join(f"{s}: {{id: {key_id}-{s}, key: '{key}'}}\n" for s in SINKS))
    path.chmod(mode)


def setup(tmp_path: Path) -> tuple[ConfigReloader, list[Engine], CollectorRegistry, Path]:
    shutil.copytree(REPO / "config", tmp_path / "config")
    config = load_config(tmp_path / "config")
    keys = tmp_path / "keys.yaml"
    write_keys(keys, "k1", b"1")

    def load_keys(names: object) -> Keyring:
        return load_keyring({}, list(names), secret_file=keys)  # type: ignore[call-overload]

    registry = CollectorRegistry()
    swapped: list[Engine] = []
    reloader = ConfigReloader(
        tmp_path / "config", config, load_keys(SINKS), build_metrics(config, registry),
        swapped.append, load_keys=load_keys,
    )  # fmt: skip
    return reloader, swapped, registry, keys


def key_ids(engine: Engine) -> dict[str, str]:
    """The key id each sink's outputs name (the `gateway-key-id` header)."""
    return {plan.name: plan.key_id for plan in engine.plans}


def reloads(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("gateway_config_reloads_total", {"result": result}) or 0.0


def test_when_the_key_file_holds_new_keys_then_the_next_engine_names_the_new_key_ids(
    tmp_path: Path,
) -> None:
    reloader, swapped, registry, keys = setup(tmp_path)
    write_keys(keys, "k2", b"2")
    assert reloader.reload()
    assert key_ids(swapped[0]) == {s: f"k2-{s}" for s in SINKS}
    assert reloads(registry, "success") == 1
    assert reloader.reload()  # nothing changed since: no new engine
    assert len(swapped) == 1


@pytest.mark.parametrize(
    "damage",
    ["not base64", "group readable", "a sink missing"],
)
def test_when_the_key_file_is_bad_then_the_reload_is_refused_counted_and_old_keys_stay(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    reloader, swapped, registry, keys = setup(tmp_path)
    (tmp_path / "config" / "sinks" / "social.yaml").write_text(
        (tmp_path / "config" / "sinks" / "social.yaml").read_text() + "\n# edited\n"
    )  # a valid rules change rides along: all or nothing, it must not apply either
    if damage == "not base64":
        keys.write_text("".join(f"{s}: {{id: k3-{s}, key: '!!!'}}\n" for s in SINKS))
    elif damage == "group readable":
        write_keys(keys, "k3", b"3", mode=0o640)
    else:
        keys.write_text(keys.read_text().split("\n", 1)[1])
    version = reloader.version
    with caplog.at_level(logging.ERROR):
        assert not reloader.reload()
    assert swapped == []
    assert reloader.version == version
    assert reloads(registry, "failure") == 1
    assert "the keys in force stay" in caplog.text
    assert base64.b64encode(b"3" * 32).decode() not in caplog.text
    write_keys(keys, "k4", b"4")  # fixed: the next HUP applies rules and keys together
    assert reloader.reload()
    assert key_ids(swapped[0])["ads"] == "k4-ads"
    assert reloader.version != version


def write_rotation(path: Path, current: tuple[str, bytes], previous: tuple[str, bytes]) -> None:
    def key(byte: bytes) -> str:
        return base64.b64encode(byte * 32).decode()

    path.write_text(
        "".join(
            f"{s}: {{id: {current[0]}-{s}, key: '{key(current[1])}',"
            f" previous: {{id: {previous[0]}-{s}, key: '{key(previous[1])}'}}}}\n"
            for s in SINKS
        )
    )
    path.chmod(0o600)


@pytest.mark.parametrize("reused", ["current", "previous"])
def test_when_a_key_id_in_force_gets_other_key_bytes_then_the_reload_is_refused(
    tmp_path: Path, reused: str, caplog: pytest.LogCaptureFixture
) -> None:
    reloader, swapped, registry, keys = setup(tmp_path)
    write_rotation(keys, ("k2", b"2"), ("k1", b"1"))  # an honest rotation: k1 kept as previous
    assert reloader.reload()
    assert key_ids(swapped[0]) == {s: f"k2-{s}" for s in SINKS}
    if reused == "current":
        write_rotation(keys, ("k2", b"9"), ("k1", b"1"))
    else:
        write_rotation(keys, ("k3", b"3"), ("k1", b"9"))
    with caplog.at_level(logging.ERROR):
        assert not reloader.reload()
    assert len(swapped) == 1  # the engine of the honest rotation stays in force
    assert reloads(registry, "failure") == 1
    reused_id = "k2" if reused == "current" else "k1"
    for sink in SINKS:
        assert (
            f"sink '{sink}': key id '{reused_id}-{sink}' already names another key" in caplog.text
        )
    assert "the keys in force stay" in caplog.text
    assert base64.b64encode(b"9" * 32).decode() not in caplog.text
    assert base64.b64encode(b"1" * 32).decode() not in caplog.text
    write_rotation(keys, ("k3", b"3"), ("k2", b"2"))  # a new id for the new key: accepted
    assert reloader.reload()
    assert key_ids(swapped[-1]) == {s: f"k3-{s}" for s in SINKS}
