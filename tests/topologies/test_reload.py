"""Config reload: valid rules swap in; invalid or reshaped configs keep the running one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.config import load_config
from gateway.config_models import Topics
from gateway.engine import Engine
from gateway.keys import load_keyring
from topologies.reload import ConfigReloader
from topologies.worker import build_metrics

REPO = Path(__file__).resolve().parents[2]


def setup(tmp_path: Path) -> tuple[ConfigReloader, list[str], CollectorRegistry]:
    shutil.copytree(REPO / "config", tmp_path / "config")
    config = load_config(tmp_path / "config")
    keyring = load_keyring({}, [r.name for r in config.sinks], demo=True, random_bytes=os.urandom)
    registry = CollectorRegistry()
    swapped: list[str] = []

    def swap(engine: Engine) -> None:
        assert isinstance(engine, Engine)
        swapped.append(engine.config.version)

    reloader = ConfigReloader(
        tmp_path / "config", config, keyring, build_metrics(config, registry), swap
    )
    return reloader, swapped, registry


def reloads(registry: CollectorRegistry, result: str) -> float:
    value = registry.get_sample_value("gateway_config_reloads_total", {"result": result})
    return value or 0.0


def edit(path: Path, change: dict[str, object]) -> None:
    rule = yaml.safe_load(path.read_text())
    rule.update(change)
    path.write_text(yaml.safe_dump(rule))


def test_when_a_sink_rule_changes_validly_then_the_new_engine_is_swapped_in(tmp_path: Path) -> None:
    reloader, swapped, registry = setup(tmp_path)
    before = reloader.version
    edit(tmp_path / "config" / "sinks" / "social.yaml", {"event_types": ["page_view"]})
    assert reloader.reload()
    assert swapped == [reloader.version] and reloader.version != before
    assert reloads(registry, "success") == 1
    info = registry.get_sample_value("gateway_config_info", {"version": reloader.version})
    assert info == 1


def test_when_the_new_config_is_invalid_then_the_running_config_stays(tmp_path: Path) -> None:
    reloader, swapped, registry = setup(tmp_path)
    before = reloader.version
    edit(tmp_path / "config" / "sinks" / "ads.yaml", {"colour": "blue"})
    assert not reloader.reload()
    assert swapped == [] and reloader.version == before
    assert reloads(registry, "failure") == 1


def test_when_a_sink_topic_changes_then_the_reload_asks_for_a_restart(tmp_path: Path) -> None:
    reloader, swapped, registry = setup(tmp_path)
    edit(tmp_path / "config" / "sinks" / "ads.yaml", {"topic": "sink.ads.v2"})
    assert not reloader.reload()
    assert swapped == []
    assert reloads(registry, "failure") == 1


def test_when_nothing_changed_then_nothing_is_swapped(tmp_path: Path) -> None:
    reloader, swapped, registry = setup(tmp_path)
    assert reloader.reload()
    assert swapped == [] and reloads(registry, "success") == 1


@pytest.mark.parametrize("field", sorted(Topics.model_fields))
def test_when_any_gateway_topic_changes_then_the_reload_asks_for_a_restart(
    tmp_path: Path, field: str
) -> None:
    # Every field of the Topics model, so a topic added later is covered without editing this.
    reloader, swapped, registry = setup(tmp_path)
    settings = tmp_path / "config" / "gateway.yaml"
    document = yaml.safe_load(settings.read_text())
    document.setdefault("topics", {})[field] = f"renamed.{field}.v2"
    settings.write_text(yaml.safe_dump(document))
    assert not reloader.reload()
    assert swapped == []
    assert reloads(registry, "failure") == 1
