"""Worker processes for integration tests: the project's `Child`, started from this interpreter."""

from __future__ import annotations

import sys

from devtools.processes import Child as Proc

__all__ = ["Proc", "python_argv"]


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]
