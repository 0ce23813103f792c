"""`gateway local up|status|down` on a second broker beside the session's one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def gateway(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "topologies.cli", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=180, check=False,
    )  # fmt: skip


def test_when_up_then_down_then_no_process_is_left_and_a_second_up_downloads_nothing(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    del kafka_bootstrap  # the session broker holds the default ports: this one must pick others
    env = {"GATEWAY_STATE_DIR": str(tmp_path / "state")}
    first = gateway("local", "up", env=env)
    assert first.returncode == 0, first.stderr
    bootstrap = first.stdout.strip()
    assert bootstrap.startswith("127.0.0.1:")
    status = gateway("local", "status", env=env)
    assert status.returncode == 0 and f"bootstrap: {bootstrap}" in status.stdout
    pid = int(
        next(line for line in status.stdout.splitlines() if line.startswith("pid:")).split()[1]
    )

    again = gateway("local", "up", env=env)
    assert again.returncode == 0 and "reused the running broker" in again.stderr

    down = gateway("local", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert (
        not Path(f"/proc/{pid}").exists()
        or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    )
    assert gateway("local", "status", env=env).returncode == 3

    # Without Maven on PATH a download is impossible: a cached second start must not need it.
    java_dir = str(Path(shutil.which("java") or "java").resolve().parent)
    no_maven = {**env, "PATH": os.pathsep.join([java_dir, str(Path(sys.executable).parent)])}
    second = gateway("local", "up", env=no_maven)
    try:
        assert second.returncode == 0, second.stderr
        assert "assembling" not in second.stdout + second.stderr
    finally:
        assert gateway("local", "down", env=env).returncode == 0
