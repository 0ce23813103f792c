"""Run a module with Python's garbage collections logged: `python -m benchmarks.gcprobe LOG MODULE
ARGS...`.

Used for the gateway worker in the latency windows, so that latency spikes can be set against
the collector's pauses. Every collection of generation 1 or 2, and any collection of 1 ms or
more, appends one line `wall_time_s generation duration_ms collected` to LOG (wall clock, like
the broker's append times). Generation-0 collections shorter than 1 ms are only counted (the
last line, written at exit, says how many). The module then runs as `python -m MODULE ARGS...`.
"""

from __future__ import annotations

import atexit
import gc
import runpy
import sys
import time
from typing import Any, TextIO


class GcLog:
    """The `gc.callbacks` entry: times each collection and writes the notable ones."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._started = 0.0
        self.quick_gen0 = 0
        self.closed = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if self.closed:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        millis = (time.perf_counter() - self._started) * 1000
        generation = int(info.get("generation", 0))
        if generation == 0 and millis < 1.0:
            self.quick_gen0 += 1
            return
        self._out.write(f"{time.time():.6f} {generation} {millis:.3f} {info.get('collected', 0)}\n")
        self._out.flush()

    def close(self) -> None:
        self.closed = True
        self._out.write(f"# gen0 collections under 1 ms: {self.quick_gen0}\n")
        self._out.close()


def main() -> None:
    log_path, module, *rest = sys.argv[1:]
    probe = GcLog(open(log_path, "w"))  # noqa: SIM115 - closed at exit
    gc.callbacks.append(probe)
    atexit.register(probe.close)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
