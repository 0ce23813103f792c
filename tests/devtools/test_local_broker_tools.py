"""The kafka-tools jars join an assembled broker lib in place, never replacing a jar."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools import local_broker


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GATEWAY_CACHE_DIR", str(tmp_path))
    lib = local_broker.jars_dir("9.9.9")
    lib.mkdir(parents=True)
    (lib / ".complete").write_text("9.9.9")
    (lib / "kafka_2.13-9.9.9.jar").write_bytes(b"broker")
    (lib / "jackson-core-1.0.jar").write_bytes(b"the broker's copy")
    return lib


def fake_maven(jars: dict[str, bytes]) -> object:
    def copy(version: str, into: Path) -> None:
        into.mkdir(parents=True, exist_ok=True)
        for name, body in jars.items():
            (into / name.replace("VERSION", version)).write_bytes(body)

    return copy


def test_when_the_cache_lacks_the_tools_then_they_are_added_and_no_jar_is_replaced(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        local_broker, "_maven_copy",
        fake_maven({"kafka-tools-VERSION.jar": b"tools", "argparse4j-0.7.0.jar": b"args",
                    "jackson-core-1.0.jar": b"maven's copy"}),
    )  # fmt: skip
    lib, downloaded = local_broker.assemble("9.9.9", log=False)
    assert lib == cache
    assert downloaded
    assert (lib / "kafka-tools-9.9.9.jar").read_bytes() == b"tools"
    assert (lib / "argparse4j-0.7.0.jar").read_bytes() == b"args"
    assert (lib / "jackson-core-1.0.jar").read_bytes() == b"the broker's copy"
    assert not list(lib.glob(".*.partial"))
    assert not list(lib.parent.glob("tools-staging-*"))


def test_when_the_tools_are_there_then_maven_is_not_run(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (cache / "kafka-tools-9.9.9.jar").write_bytes(b"tools")

    def refuse(version: str, into: Path) -> None:
        raise AssertionError("Maven ran")

    monkeypatch.setattr(local_broker, "_maven_copy", refuse)
    assert local_broker.assemble("9.9.9", log=False) == (cache, False)


def test_when_maven_yields_no_tools_jar_then_the_assembly_fails_and_lib_is_untouched(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_broker, "_maven_copy", fake_maven({"other-1.jar": b"x"}))
    before = sorted(p.name for p in cache.iterdir())
    with pytest.raises(local_broker.BrokerError, match="kafka-tools"):
        local_broker.assemble("9.9.9", log=False)
    assert sorted(p.name for p in cache.iterdir()) == before
    assert not list(cache.parent.glob("tools-staging-*"))


def test_the_pom_asks_for_the_tools_of_the_broker_version_without_connect_runtime() -> None:
    pom = local_broker._POM.format(kafka="4.0.2", log4j="2.24.3")
    assert "<artifactId>kafka-tools</artifactId>\n      <version>4.0.2</version>" in pom
    assert "<artifactId>connect-runtime</artifactId>" in pom
