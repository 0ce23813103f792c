"""The config models as files and as code: the committed JSON Schemas are the models', the
shipped YAML files point editors at them, and every config key is read by something."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from pydantic import BaseModel

from gateway.cli import rules_schema, schema_files
from gateway.config_models import Settings, SinkRule, Topics
from gateway.operators import OPERATOR_CLASSES, AnyOperatorConfig
from tests.unit.conftest import CONFIG_DIR

ROOT = CONFIG_DIR.parent
# Keys that only document the rule for its reader; nothing is meant to act on them.
DOCUMENTATION_KEYS = {("SinkRule", "description")}


def test_when_schemas_are_generated_then_the_committed_files_are_up_to_date() -> None:
    committed = {p.name: p.read_bytes() for p in (CONFIG_DIR / "schema").glob("*.json")}
    assert committed == schema_files(), "run `gateway rules schema` and commit config/schema/"


def test_when_rules_schema_runs_then_it_writes_both_schemas(tmp_path: Path) -> None:
    assert rules_schema(argparse.Namespace(config=CONFIG_DIR, out=tmp_path / "s")) == 0
    assert {p.name for p in (tmp_path / "s").iterdir()} == {
        "gateway.schema.json",
        "sink.schema.json",
    }


def test_when_a_shipped_yaml_file_is_opened_then_its_modeline_names_its_schema() -> None:
    files = dict.fromkeys((CONFIG_DIR / "sinks").glob("*.yaml"), "sink")
    files[CONFIG_DIR / "gateway.yaml"] = "gateway"
    for path, schema in files.items():
        first = path.read_text().splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), path
        target = (path.parent / first.removeprefix(prefix)).resolve()
        assert target == (CONFIG_DIR / "schema" / f"{schema}.schema.json").resolve(), path


def test_when_the_sink_schema_is_read_then_the_file_name_is_no_key_of_it() -> None:
    properties = schema_files()["sink.schema.json"].decode()
    assert '"name"' not in properties
    assert SinkRule.model_fields["name"].exclude


def _models() -> list[type[BaseModel]]:
    operator_configs = list(AnyOperatorConfig.__origin__.__args__)  # type: ignore[attr-defined]
    assert {cls.config_model for cls in OPERATOR_CLASSES} == set(operator_configs)
    return [Settings, Topics, SinkRule, *operator_configs]


def _names_read(models: list[type[BaseModel]]) -> set[str]:
    """Attribute names and string constants in the runtime code (gateway/, topologies/),
    outside the models' own class bodies."""
    skipped = {model.__name__ for model in models}
    names: set[str] = set()
    for path in [*ROOT.glob("gateway/**/*.py"), *ROOT.glob("topologies/**/*.py")]:
        pending: list[ast.AST] = [ast.parse(path.read_text())]
        while pending:
            node = pending.pop()
            if isinstance(node, ast.ClassDef) and node.name in skipped:
                continue
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
            pending.extend(ast.iter_child_nodes(node))
    return names


def test_when_a_config_key_exists_then_some_code_reads_it() -> None:
    # Static: every field of every config model (gateway.yaml, a sink rule, each operator's
    # options) is named, as an attribute or a string, by runtime code outside its model. A
    # key that nothing reads would be accepted and silently do nothing.
    models = _models()
    read = _names_read(models)
    unread = [
        (model.__name__, name)
        for model in models
        for name in model.model_fields
        if name not in read and (model.__name__, name) not in DOCUMENTATION_KEYS
    ]
    assert unread == []
    for key in ("identifier_min_length", "consent_clock_tolerance_seconds", "audit_forwards"):
        assert key in Settings.model_fields and key in read
