"""Least privilege from the config: who may read and write which topic and group."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from gateway.acls import (
    AclEntry,
    AclError,
    app_id_problem,
    derive_acls,
    internal_topic_prefix,
    partner_principals,
    principal_problem,
    render_json,
    render_kafka_acls,
    worker_groups,
)
from gateway.config import GatewayConfig, load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> GatewayConfig:
    return load_config(REPO / "config")


def grants(entries: list[AclEntry], principal: str) -> set[tuple[str, str, str, str]]:
    return {
        (e.resource_type, e.pattern_type, e.name, e.operation)
        for e in entries
        if e.principal == principal
    }


def test_when_acls_are_derived_then_each_partner_reads_only_its_own_sink_and_groups(
    config: GatewayConfig,
) -> None:
    entries = derive_acls(config, app_id="gw")
    sinks = {rule.name: rule.topic for rule in config.sinks}
    assert set(sinks) == {"analytics", "ads", "social"}
    for sink, topic in sinks.items():
        assert grants(entries, f"User:{sink}") == {
            ("topic", "literal", topic, "Read"),
            ("topic", "literal", topic, "Describe"),
            ("group", "prefixed", f"{sink}.", "Read"),
        }
    everyone = {"User:gateway", "User:privacy"} | {f"User:{s}" for s in sinks}
    assert {e.principal for e in entries} == everyone


def test_when_acls_are_derived_then_only_the_gateway_touches_raw_audit_and_dlq(
    config: GatewayConfig,
) -> None:
    topics = config.settings.topics
    entries = derive_acls(config, app_id="gw", gateway_principal="User:gw-worker")
    private = {topics.usage_raw, topics.device_raw, topics.audit, topics.dlq}
    assert {e.principal for e in entries if e.name in private} == {"User:gw-worker"}
    for shared in (topics.consent, topics.erasure):  # the privacy team's commands need them
        assert {e.principal for e in entries if e.name == shared} == {
            "User:gw-worker",
            "User:privacy",
        }
    gateway = grants(entries, "User:gw-worker")
    for topic in (topics.usage_raw, topics.device_raw, topics.consent):
        assert ("topic", "literal", topic, "Read") in gateway
        assert ("topic", "literal", topic, "Write") not in gateway
    for topic in [topics.audit, topics.dlq, topics.erasure, *(r.topic for r in config.sinks)]:
        assert ("topic", "literal", topic, "Write") in gateway
        assert ("topic", "literal", topic, "Read") not in gateway
    for group in worker_groups("gw"):
        assert ("group", "literal", group, "Read") in gateway
    assert ("topic", "prefixed", internal_topic_prefix("gw"), "Write") in gateway


def test_when_acls_are_derived_then_the_privacy_team_writes_consent_and_reads_erasure_only(
    config: GatewayConfig,
) -> None:
    topics = config.settings.topics
    entries = derive_acls(config, app_id="gw", privacy_principal="User:dpo")
    assert grants(entries, "User:dpo") == {
        ("topic", "literal", topics.consent, "Write"),
        ("topic", "literal", topics.consent, "Read"),
        ("topic", "literal", topics.consent, "Describe"),
        ("topic", "literal", topics.erasure, "Read"),
        ("topic", "literal", topics.erasure, "Describe"),
    }  # no group: subject-report assigns partitions, gateway consent only produces
    assert ("topic", "literal", topics.consent, "Write") not in grants(entries, "User:gateway")


def test_when_the_privacy_principal_is_the_gateways_or_a_partners_then_derivation_refuses(
    config: GatewayConfig,
) -> None:
    with pytest.raises(AclError, match="must not write consent"):
        derive_acls(config, app_id="gw", privacy_principal="User:gateway")
    with pytest.raises(AclError, match="sink 'ads': its partner's principal is the privacy team's"):
        derive_acls(config, app_id="gw", privacy_principal="User:ads")


def test_when_a_partner_would_share_a_principal_then_derivation_refuses(
    config: GatewayConfig,
) -> None:
    with pytest.raises(ValueError, match="the gateway's"):
        derive_acls(config, app_id="gw", partners=partner_principals(config, "User:gateway"))
    with pytest.raises(ValueError, match="same partner principal"):
        derive_acls(config, app_id="gw", partners=partner_principals(config, "User:partner"))


@pytest.mark.parametrize("app_id", ["", "-", "a b", "-leading-dash", "x" * 151, "gw/1"])
def test_when_the_app_id_is_empty_or_invalid_then_derivation_refuses(
    config: GatewayConfig, app_id: str
) -> None:
    assert app_id_problem(app_id) is not None
    with pytest.raises(AclError, match="the app id"):
        derive_acls(config, app_id=app_id)


@pytest.mark.parametrize("app_id", ["privacy-gateway", "gw", "gw-sec-0a1b", "team_a.gw", "9gw"])
def test_when_the_app_id_is_a_topic_prefix_then_it_is_accepted(app_id: str) -> None:
    assert app_id_problem(app_id) is None


@pytest.mark.parametrize("principal", ["gateway", ":gateway", "User:", "User: x", "", "1:x"])
def test_when_a_principal_has_no_type_then_derivation_refuses(
    config: GatewayConfig, principal: str
) -> None:
    assert principal_problem(principal) is not None
    with pytest.raises(AclError, match="is not Type:name"):
        derive_acls(config, app_id="gw", gateway_principal=principal)


def test_when_several_inputs_are_wrong_then_every_problem_is_listed(config: GatewayConfig) -> None:
    with pytest.raises(AclError) as caught:
        derive_acls(config, app_id="", gateway_principal="gateway",
                    partners=partner_principals(config, "{sink}"))  # fmt: skip
    assert len(caught.value.problems) == 2 + len(config.sinks)
    assert "sink 'ads': its partner's principal 'ads' is not Type:name" in str(caught.value)


@pytest.mark.parametrize(
    "argv",
    [
        ["--app-id", ""],
        ["--principal", "gateway"],
        ["--partner-principal", "{sink}"],
    ],
)
def test_when_gateway_acls_gets_an_unusable_option_then_one_line_and_exit_2(
    argv: list[str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "topologies.cli", "acls", *argv],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("gateway acls: ")


def test_when_rendered_as_kafka_acls_lines_then_they_add_exactly_the_derived_entries(
    config: GatewayConfig,
) -> None:
    entries = derive_acls(config, app_id="gw")
    parsed: set[AclEntry] = set()
    for line in render_kafka_acls(entries):
        words = shlex.split(line)
        assert words[:6] == [
            "kafka-acls.sh", "--bootstrap-server", "$KAFKA_BOOTSTRAP", "--command-config",
            "$KAFKA_ADMIN_CONFIG", "--add",
        ]  # fmt: skip
        pairs = list(zip(words[6::2], words[7::2], strict=True))
        principal = next(v for k, v in pairs if k == "--allow-principal")
        pattern = next(v for k, v in pairs if k == "--resource-pattern-type")
        ops = [v for k, v in pairs if k == "--operation"]
        for key, name in pairs:
            if key in ("--topic", "--group"):
                kind = key[2:]
                parsed.update(AclEntry(principal, kind, pattern, name, op) for op in ops)  # type: ignore[arg-type]
    assert parsed == set(entries)


def test_when_rendered_as_json_then_principals_and_entries_are_listed(
    config: GatewayConfig,
) -> None:
    partners = partner_principals(config, "User:partner-{sink}")
    entries = derive_acls(config, app_id="gw", partners=partners)
    shown = render_json(entries, gateway_principal="User:gateway", partners=partners)
    assert shown["principals"]["partners"]["ads"] == "User:partner-ads"
    assert shown["principals"]["privacy"] == "User:privacy"
    assert len(shown["acls"]) == len(entries)
    assert {a["permission"] for a in shown["acls"]} == {"ALLOW"}


def test_when_gateway_acls_runs_then_it_prints_the_configs_acls() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "topologies.cli", "acls", "--format", "json", "--app-id", "gw"],
        capture_output=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = orjson.loads(result.stdout)
    config = load_config(REPO / "config")
    assert len(shown["acls"]) == len(derive_acls(config, app_id="gw"))
    text = subprocess.run(
        [sys.executable, "-m", "topologies.cli", "acls", "--config", str(REPO / "nowhere")],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert text.returncode == 1
