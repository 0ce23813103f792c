"""The runtime (gateway/, topologies/) apart from the dev tools (devtools/).

ruff bans `import devtools` in both (pyproject.toml, topologies/ruff.toml); these tests prove the
ban bites, that importing the worker loads no dev tool, and that without the dev package the
`gateway` command simply has no dev commands (as in the image).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")


def ruff_findings(filename: str, source: str) -> str:
    result = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--select", "TID251", "--stdin-filename", filename],
        input=source, capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


@pytest.mark.parametrize("filename", ["topologies/new_module.py", "gateway/new_module.py"])
def test_when_the_runtime_imports_the_dev_tools_then_ruff_refuses(filename: str) -> None:
    for source in ("import devtools.demo\n", "from devtools.local_broker import up\n"):
        assert "TID251" in ruff_findings(filename, source), (filename, source)


def test_when_topologies_imports_itself_and_the_core_then_ruff_allows_it() -> None:
    source = "from gateway.engine import Engine\nfrom topologies.worker import run\n"
    assert "TID251" not in ruff_findings("topologies/new_module.py", source)
    assert "TID251" in ruff_findings("gateway/new_module.py", "import topologies.worker\n")
    assert "TID251" not in ruff_findings("devtools/new_module.py", "import topologies.worker\n")


def test_when_the_worker_and_its_commands_are_imported_then_no_dev_tool_is_loaded() -> None:
    code = (
        "import sys, topologies.worker, topologies.app, topologies.worker_cli, "
        "topologies.consent_cli, topologies.settings\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'devtools'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]"


def test_when_the_dev_package_is_missing_then_gateway_offers_only_the_runtime_commands() -> None:
    # sys.modules[name] = None makes the package unimportable, as in the image.
    code = (
        "import sys; sys.modules['devtools'] = None\n"
        "from topologies.cli import build_parser\n"
        "sub = build_parser()._subparsers._group_actions[0]\n"
        "print(' '.join(sorted(sub.choices)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.split() == ["acls", "consent", "explain", "rules", "run", "subject-report"]


def test_when_the_dev_package_is_installed_then_gateway_offers_its_commands_too() -> None:
    from topologies.cli import build_parser

    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)
    assert {"run", "consent", "local", "demo", "loadgen"} <= commands
