"""`gateway demo` (what `make run` runs) on the real broker: a signal stops all it started.

Found by a newcomer: `timeout 120 make run` left the gateway's children and the broker running
(Python's default SIGTERM skips the demo's cleanup), and closing the terminal did the same.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_when_the_demo_gets_a_signal_then_it_stops_its_gateway_and_load_generator(
    kafka_bootstrap: str, tmp_path: Path, signum: signal.Signals
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "GATEWAY_CACHE_DIR": str(tmp_path / "cache"),
        "GATEWAY_CONFIG_DIR": str(REPO / "config"),
        "COLUMNS": "200",  # the demo's messages on one line each
    }
    argv = [sys.executable, "-m", "topologies.cli", "demo", "--rate", "200", "--subjects", "50"]
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while "starting synthetic traffic" not in log.read_text(errors="replace"):
            assert demo.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.5)
        children = _children(demo.pid)
        assert len(children) == 2, children  # the gateway and the load generator
        demo.send_signal(signum)
        assert demo.wait(timeout=90) == 0, log.read_text(errors="replace")
        assert "stopping the load generator and the gateway" in log.read_text(errors="replace")
        assert not any(_alive(pid) for pid in children)
    finally:  # nothing left running, whatever failed (the children outlive a killed demo)
        children |= _children(demo.pid)
        if demo.poll() is None:
            demo.kill()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
