"""docker-compose.yml and the Dockerfile, validated without a Docker engine.

Parses the files and checks what `docker compose up` relies on: the services, pinned images,
healthchecks and start order, mounted files that exist in the repo, topics that match the config,
and environment variables that are defined, documented and free of secrets.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
OPERATIONS = REPO / "docs" / "operations.md"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def topics_service() -> dict[str, Any]:
    found: dict[str, Any] | None = services().get("topics") or services().get("kafka-init")
    assert found, "no topic set-up service (topics or kafka-init)"
    return found


def source_text() -> str:
    files = sorted((REPO / "gateway").rglob("*.py")) + sorted((REPO / "topologies").rglob("*.py"))
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts.append((REPO / source, target))
    return mounts


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    # Like Docker: comment lines go first (also inside a continued instruction), then `\` joins.
    lines = path.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.strip().startswith("#"))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.replace("\\\n", " ").splitlines())
        if line
    ]


def test_when_compose_is_parsed_then_every_service_of_the_stack_exists() -> None:
    names = set(services())
    assert {"kafka", "gateway", "loadgen", "prometheus", "grafana"} <= names
    assert names & {"topics", "kafka-init"}
    assert services()["loadgen"]["profiles"] == ["load"]
    for name, service in services().items():
        if name != "loadgen":
            assert "profiles" not in service, f"{name} must start by default"


def test_when_images_are_read_then_each_is_pinned_or_built_here() -> None:
    for name, service in services().items():
        image = service.get("image", "")
        if "build" in service:
            wanted = "devtools/loadgen.Dockerfile" if name == "loadgen" else "Dockerfile"
            assert service["build"]["dockerfile"] == wanted, name
            continue
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image!r} has no tag"
        assert tag not in {"", "latest"}, f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d", tag), f"{name}: tag {tag!r} names no version"
    assert services()["kafka"]["image"] == "apache/kafka:4.0.0"
    assert topics_service()["image"] == services()["kafka"]["image"]
    assert services()["prometheus"]["image"].startswith("prom/prometheus:")
    assert services()["grafana"]["image"].startswith("grafana/grafana:")


def test_when_kafka_is_read_then_it_runs_kraft_with_an_inside_listener() -> None:
    env = services()["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert str(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]).startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    cluster_id = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", env["CLUSTER_ID"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id), "CLUSTER_ID must be a base64url UUID"


def test_when_services_start_then_order_waits_on_health_and_topic_set_up() -> None:
    s = services()
    for name in ("kafka", "gateway", "prometheus", "grafana"):
        assert s[name]["healthcheck"]["test"], name
    assert topics_service()["depends_on"]["kafka"]["condition"] == "service_healthy"
    topics_name = "topics" if "topics" in s else "kafka-init"
    for name in ("gateway", "loadgen"):
        condition = s[name]["depends_on"][topics_name]["condition"]
        assert condition == "service_completed_successfully", name
    assert s["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_when_topics_are_created_then_they_match_the_config_and_co_partitioning() -> None:
    script = " ".join(topics_service()["command"])
    settings = yaml.safe_load((REPO / "config" / "gateway.yaml").read_text(encoding="utf-8"))
    wanted = set(settings["topics"].values())
    for rule in sorted((REPO / "config" / "sinks").glob("*.yaml")):
        wanted.add(yaml.safe_load(rule.read_text(encoding="utf-8"))["topic"])
    created: dict[str, str] = {}
    for line in script.splitlines():
        if not re.match(r"\s*create\s", line):
            continue  # --describe and the like create nothing
        for topic in re.findall(r"--topic\s+(\S+)", line):
            created[topic.strip("\"'")] = line
    loop = re.search(r"for topic in ([^;]+);", script)
    for topic in loop.group(1).split() if loop else []:
        created[topic] = script[loop.start() :] if loop else ""
    assert wanted - set(created) == set(), "topics in config/ that compose does not create"

    def partitions(topic: str) -> str:
        found = re.search(r"--partitions\s+(\S+)", created[topic])
        assert found, topic
        return found.group(1)

    co_partitioned = [settings["topics"][k] for k in ("usage_raw", "device_raw", "consent")]
    assert len({partitions(t) for t in co_partitioned}) == 1, "raw and consent topics differ"
    assert "cleanup.policy=compact" in created[settings["topics"]["consent"]]


def test_when_prometheus_is_mounted_then_its_config_and_rules_exist_in_the_repo() -> None:
    mounts = {target: source for source, target in bind_mounts(services()["prometheus"])}
    source = mounts["/etc/prometheus"]
    config = yaml.safe_load((source / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"], "no rules loaded"
    for rule_file in config["rule_files"]:
        assert (source / rule_file).is_file(), rule_file
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "gateway"]
    port = services()["gateway"]["environment"]["GATEWAY_METRICS_PORT"]
    assert job["static_configs"][0]["targets"] == [f"gateway:{port}"]
    assert f"{port}" in " ".join(services()["gateway"]["ports"])


def test_when_grafana_is_mounted_then_provisioning_and_dashboards_exist_in_the_repo() -> None:
    grafana = services()["grafana"]
    mounts = {target: source for source, target in bind_mounts(grafana)}
    provisioning = mounts["/etc/grafana/provisioning"]
    assert (provisioning / "datasources" / "prometheus.yml").is_file()
    provider = yaml.safe_load((provisioning / "dashboards" / "gateway.yml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert (mounts[dashboards_path] / "gateway.json").is_file()
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def test_when_the_dockerfile_is_read_then_it_installs_the_package_and_runs_the_gateway() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "FROM"
    assert instructions[0][1].startswith("python:3.11-slim")
    assert any(op == "RUN" and "pip install ." in arg for op, arg in instructions)
    (entrypoint,) = [arg for op, arg in instructions if op == "ENTRYPOINT"]
    assert yaml.safe_load(entrypoint) == ["gateway"]
    assert any(op == "USER" and arg != "root" for op, arg in instructions)
    for op, arg in instructions:
        if op == "COPY":
            for source in shlex.split(arg)[:-1]:
                assert (REPO / source).exists(), f"COPY source {source} is missing"
    gateway_command = services()["gateway"]["command"]
    assert gateway_command[0] == "run"
    assert services()["loadgen"]["command"][0] == "loadgen"


def _ignore_pattern(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*|\?)", pattern.strip().strip("/"))
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(part, re.escape(part)) for part in parts))


def build_context(ignore_file: Path) -> list[str]:
    """The repository files a build with `ignore_file` sends, by Docker's rules: the last
    matching pattern wins, `!` includes again, a pattern matching a folder covers its files."""
    rules = [
        (line.startswith("!"), _ignore_pattern(line.removeprefix("!")))
        for line in ignore_file.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    sent = []
    for path in listed:
        prefixes = ["/".join(path.split("/")[: n + 1]) for n in range(path.count("/") + 1)]
        included = True
        for include, pattern in rules:
            if any(pattern.fullmatch(prefix) for prefix in prefixes):
                included = include
        if included and (REPO / path).exists():
            sent.append(path)
    return sent


def test_when_the_image_is_built_then_its_context_is_the_runtime_only() -> None:
    sent = build_context(REPO / ".dockerignore")
    tops = {path.split("/")[0] for path in sent}
    assert tops == {"gateway", "topologies", "config", "pyproject.toml", "README.md"}, tops
    assert not [p for p in sent if p.startswith(("devtools/", "tests/", "benchmarks/"))]
    assert "topologies/worker.py" in sent and "gateway/engine.py" in sent
    assert "config/gateway.yaml" in sent and any(p.startswith("config/sinks/") for p in sent)
    copied = [arg for op, arg in dockerfile_instructions() if op == "COPY"]
    assert not [arg for arg in copied if re.search(r"devtools|tests|benchmarks", arg)]


def test_when_the_loadgen_image_is_built_then_it_adds_the_dev_tools_and_nothing_else() -> None:
    dockerfile = REPO / "devtools" / "loadgen.Dockerfile"
    sent = build_context(dockerfile.with_name(dockerfile.name + ".dockerignore"))
    assert "devtools/loadgen.py" in sent and "topologies/worker.py" in sent
    assert not [p for p in sent if p.startswith(("tests/", "benchmarks/"))]
    for op, arg in dockerfile_instructions(dockerfile):
        if op == "COPY":
            for source in shlex.split(arg)[:-1]:
                assert any(p == source or p.startswith(f"{source}/") for p in sent), source
    (entrypoint,) = [arg for op, arg in dockerfile_instructions(dockerfile) if op == "ENTRYPOINT"]
    assert yaml.safe_load(entrypoint) == ["gateway"]


def test_when_env_vars_are_referenced_then_each_has_a_default_or_is_set() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for match in re.finditer(r"(?<!\$)\$\{([^}]*)\}", text):
        assert re.fullmatch(r"\w+:-[^}]+", match.group(1)), f"${{{match.group(1)}}} has no default"
    for name in ("gateway", "loadgen"):
        env = services()[name]["environment"]
        assert env["KAFKA_BOOTSTRAP"] == "kafka:9092", name
    script = " ".join(topics_service()["command"])
    local = set(re.findall(r"\bfor\s+(\w+)\s+in\b", script))
    for variable in set(re.findall(r"\$\$\{?(\w+)", script)) - local:
        assert variable in topics_service()["environment"], variable
    for entry in services()["gateway"].get("env_file", []):
        assert entry["required"] is False or (REPO / entry["path"]).is_file()


def test_when_the_gateway_environment_is_read_then_every_variable_is_documented() -> None:
    documented = OPERATIONS.read_text(encoding="utf-8")
    for name in ("gateway", "loadgen"):
        for variable in services()[name]["environment"]:
            assert f"`{variable}`" in documented, f"{variable} not in docs/operations.md"


def test_when_the_gateway_settings_are_passed_then_the_code_reads_each_of_them() -> None:
    # A variable nobody reads is a setting that silently does nothing.
    code = source_text()
    image_env = [
        name
        for op, arg in dockerfile_instructions()
        if op == "ENV"
        for name in re.findall(r"(\w+)=", arg)
    ]
    for variable in [*services()["gateway"]["environment"], *image_env]:
        if variable.startswith(("GATEWAY_", "KAFKA_")):
            assert f'"{variable}"' in code, f"{variable} is set but no code reads it"


def test_when_the_gateway_runs_in_a_container_then_metrics_listen_beyond_loopback() -> None:
    assert services()["gateway"]["environment"]["GATEWAY_METRICS_HOST"] == "0.0.0.0"
    env = " ".join(arg for op, arg in dockerfile_instructions() if op == "ENV")
    assert "GATEWAY_METRICS_HOST=0.0.0.0" in env


def test_when_compose_is_read_then_no_secret_value_is_in_it() -> None:
    for name, service in services().items():
        for variable, value in (service.get("environment") or {}).items():
            if re.search(r"KEY|SECRET|PASSWORD|TOKEN", variable):
                pytest.fail(f"{name}: {variable}={value!r} belongs in gateway.env or a secret")


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode
    != 0,
    reason="the docker compose plugin is not installed (optional extra check)",
)
def test_when_docker_compose_is_available_then_it_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--profile", "load", "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
