"""YAML loading for config files: line numbers for every path, duplicate keys are errors.

PyYAML keeps the last of two equal keys; config must not, so values are built from the node
tree by hand, recording the line of each path and reporting every repeated key.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One config problem, printed as `FILE:LINE: PATH: MESSAGE`."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


def path_text(path: PathKey) -> str:
    """A dotted path such as `fields.ip.op` (`.` for the document root)."""
    return ".".join(str(part) for part in path) or "."


@dataclass(slots=True)
class LoadedYaml:
    """A document's value, the line of each path, and the problems found while loading."""

    value: Any
    lines: dict[PathKey, int]

    def line_of(self, path: PathKey) -> int:
        """The line of the longest known prefix of `path`."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str, problems: list[Problem]) -> None:
        self.loader = loader
        self.file = file
        self.problems = problems
        self.lines: dict[PathKey, int] = {}

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = self.build(key_node, (*path, "<key>"))
            if not isinstance(key, Hashable) or isinstance(key, list | dict):
                self._problem(line, path, "mapping keys must be plain scalars")
                continue
            if key in result:
                where = path_text((*path, str(key)))
                message = (
                    f"duplicate key (first at line {first_line[key]}); last-one-wins is an error"
                )
                self.problems.append(Problem(self.file, line, where, message))
                continue
            first_line[key] = line
            self.lines[(*path, str(key))] = line
            result[key] = self.build(value_node, (*path, str(key)))
        return result

    def _problem(self, line: int, path: PathKey, message: str) -> None:
        self.problems.append(Problem(self.file, line, path_text(path), message))


def load_yaml(text: str, file: str, problems: list[Problem]) -> LoadedYaml | None:
    """Load one YAML document; syntax errors and duplicate keys go to `problems`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            problems.append(Problem(file, 1, ".", "file is empty"))
            return None
        builder = _Builder(loader, file, problems)
        value = builder.build(node, ())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        problems.append(Problem(file, line, ".", f"YAML syntax error: {error.problem}"))
        return None
    except yaml.YAMLError as error:  # pragma: no cover - PyYAML marks nearly all errors
        problems.append(Problem(file, 1, ".", f"YAML error: {type(error).__name__}"))
        return None
    finally:
        loader.dispose()
    return LoadedYaml(value, builder.lines)
