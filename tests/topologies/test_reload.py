"""Config reload: valid rules swap in; invalid or reshaped configs keep the running one."""

from __future__ import annotations

import os
import pty
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.config import load_config
from gateway.config_models import Topics
from gateway.engine import Engine
from gateway.keys import load_keyring
from topologies.app import hangup_handler
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


def test_when_sighup_comes_from_an_operator_then_the_handler_reloads() -> None:
    calls: list[str] = []
    handler = hangup_handler(lambda: calls.append("reload"), terminal=lambda: True)
    handler()  # the terminal is still there: `kill -HUP`
    assert calls == ["reload"]


def test_when_the_worker_never_had_a_terminal_then_sighup_always_reloads() -> None:
    calls: list[str] = []
    handler = hangup_handler(lambda: calls.append("reload"), terminal=lambda: False)
    handler()
    assert calls == ["reload"]


def _child_under_a_terminal(script: str) -> tuple[int, str]:
    """Run `script` in a child whose controlling terminal is a new pty, close the pty's master
    side half a second later (the terminal hangs up), and return the child's wait status and
    what it wrote to its report file."""
    report = Path(tempfile.mkdtemp()) / "report.txt"
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            exec(script, {"REPORT": str(report)})
        finally:
            os._exit(3)
    time.sleep(0.5)
    os.close(master)
    _, status = os.waitpid(pid, 0)
    return status, report.read_text() if report.exists() else ""


def test_when_the_terminal_hangs_up_then_the_handler_stops_the_process_instead_of_reloading() -> (
    None
):
    """A real pty: the kernel's SIGHUP at its hangup, the handler's SIGTERM to the process."""
    script = """
import asyncio, signal, time
from topologies.app import has_terminal, hangup_handler

async def main():
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    reloads = []
    had = has_terminal()
    loop.add_signal_handler(signal.SIGHUP, hangup_handler(lambda: reloads.append(1)))
    await asyncio.wait_for(stopped.wait(), 10)
    with open(REPORT, "w") as f:
        f.write(f"had={had} now={has_terminal()} reloads={len(reloads)}")

asyncio.run(main())
"""
    status, report = _child_under_a_terminal(script)
    assert report == "had=True now=False reloads=0"
    assert os.waitstatus_to_exitcode(status) == 3  # the script ran to its end
