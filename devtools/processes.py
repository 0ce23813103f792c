"""Child processes with their output in a log file: started, watched, stopped with SIGTERM.

Used by `gateway demo` (worker and load generator), the integration tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.errors import GatewayError


class ChildError(GatewayError, RuntimeError):
    """A child process exited early, or did not log what was awaited."""


class Child:
    def __init__(
        self,
        argv: Sequence[str],
        log: Path,
        env: Mapping[str, str],
        *,
        name: str = "process",
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            list(argv), stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **env}, cwd=cwd,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return self.text()[-chars:]

    def check_alive(self) -> None:
        if not self.alive():
            raise ChildError(
                f"{self.name} exited with {self.popen.returncode}; log {self.log}:\n{self.tail()}"
            )

    async def wait_for_log(self, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            self.check_alive()
            await asyncio.sleep(0.1)
        raise ChildError(
            f"{self.name}: {needle!r} not logged within {timeout:.0f}s:\n{self.tail()}"
        )

    def signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, SIGKILL only if it hangs; returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._out.close()
        return self.popen.returncode
