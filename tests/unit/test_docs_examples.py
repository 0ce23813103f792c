"""Documentation examples are tested: every ```python block of the Markdown docs runs."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([ROOT / "README.md", ROOT / "config" / "README.md", *ROOT.glob("docs/*.md")])
# A fenced block at any indentation (list items indent theirs), closed at the same indentation.
_PYTHON_BLOCK = re.compile(r"^(?P<indent> *)```python\n(?P<code>.*?)^(?P=indent)```$", re.M | re.S)


def _examples() -> list[tuple[str, str]]:
    """(FILE:LINE of the fence, the block's code) for every Python block of the docs."""
    found = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in _PYTHON_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(ROOT)}:{line}"
            found.append((where, textwrap.dedent(match["code"])))
    return found


EXAMPLES = _examples()


def test_when_the_docs_are_read_then_the_metrics_example_is_found() -> None:
    # Guards the extraction itself: a changed fence must not turn this test into a no-op.
    assert any(where.startswith("docs/metrics.md:") for where, _ in EXAMPLES)


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_when_a_python_example_is_run_from_the_repository_root_then_it_succeeds(
    where: str, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(code, where, "exec"), {"__name__": "__docs_example__"})
