"""`gateway consent` and `gateway run` refuse bad input and an unreachable cluster in one line.

Every run here points `KAFKA_BOOTSTRAP` at a closed loopback port: a refusal that comes before
any Kafka client never mentions the cluster, and the unreachable cluster itself ends in one
line, exit 2, no traceback, nothing left unclosed, no address repeated.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATEWAY = Path(sys.executable).with_name("gateway")
NOWHERE = "127.0.0.1:1"
UNREACHABLE = "cannot reach the Kafka cluster at KAFKA_BOOTSTRAP"


def gateway(*args: str, bootstrap: str = NOWHERE) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP": bootstrap}
    return subprocess.run(
        [str(GATEWAY), *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "Unclosed" not in result.stderr
    assert expected in result.stderr.strip().splitlines()[-1], result.stderr


def consent_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "consent.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"subject_id": "s3cr3t-other", "updated_at": "2024-01-01T00:00:00Z"}',
            "--file is not a valid consent record: key_mismatch: "
            "record key differs from subject_id",
        ),
        (
            '{"subject_id": "u1", "updated_at": "s3cr3t-yesterday"}',
            "--file is not a valid consent record: bad_timestamp: "
            "field 'updated_at' is not RFC 3339",
        ),
        (
            '{"updated_at": "2024-01-01T00:00:00Z", "purposes": {"analytics": "s3cr3t"}}',
            "--file is not a valid consent record: wrong_type: field 'purposes.analytics'",
        ),
        (
            '{"updated_at": 5}',
            "--file is not a valid consent record: wrong_type: "
            "field 'updated_at' must be string, got number",
        ),
        ("s3cr3t not json", "--file is not a valid consent record: invalid_json: "),
        ("", "--file is not a valid consent record: invalid_json: "),
    ],
)
def test_when_the_consent_file_is_not_what_the_gateway_accepts_then_nothing_is_sent(
    tmp_path: Path, text: str, expected: str
) -> None:
    result = gateway("consent", "--subject", "u1", "--file", consent_file(tmp_path, text))
    assert_one_line_refusal(result, f"gateway consent: {expected}")
    assert UNREACHABLE not in result.stderr  # refused before any Kafka client
    assert "s3cr3t" not in result.stderr


@pytest.mark.parametrize("missing", ["absent.json", "."])
def test_when_the_consent_file_cannot_be_read_then_one_line_and_exit_2(
    tmp_path: Path, missing: str
) -> None:
    result = gateway("consent", "--subject", "u1", "--file", str(tmp_path / missing))
    assert_one_line_refusal(result, "gateway consent: cannot read --file: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_when_the_consent_file_is_valid_then_it_goes_on_to_the_cluster(tmp_path: Path) -> None:
    text = '{"subject_id": "u1", "updated_at": "2024-01-01T00:00:00Z", "purposes": {}}'
    result = gateway("consent", "--subject", "u1", "--file", consent_file(tmp_path, text))
    assert_one_line_refusal(result, UNREACHABLE)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--subject", ""], "--subject is empty"),
        (["--subject", "  ", "--tombstone"], "--subject is empty"),
        (
            ["--subject", "u1", "--grant", "analytics,social", "--deny", "social,analytics"],
            "purposes both granted and denied: analytics, social",
        ),
        (["--subject", "u1", "--grant", "analytics,nope"], "unknown purposes: nope; use "),
        (
            ["--subject", "u1", "--tombstone", "--grant", "analytics"],
            "--tombstone cannot be combined with --grant",
        ),
        (["--subject", "u1", "--tombstone", "--deny", "social"], "--tombstone cannot be combined"),
        (
            ["--subject", "u1", "--tombstone", "--under-13", "false"],
            "--tombstone cannot be combined with --under-13",
        ),
        (
            ["--subject", "u1", "--tombstone", "--parental-consent"],
            "--tombstone cannot be combined with --parental-consent",
        ),
        (
            ["--subject", "u1", "--tombstone", "--file", "x.json"],
            "--tombstone cannot be combined with --file",
        ),
        (
            ["--subject", "u1", "--file", "x.json", "--grant", "analytics"],
            "--file cannot be combined with --grant",
        ),
    ],
)
def test_when_consent_options_are_empty_or_contradict_then_nothing_is_sent(
    args: list[str], expected: str
) -> None:
    result = gateway("consent", *args)
    assert_one_line_refusal(result, f"gateway consent: {expected}")
    assert UNREACHABLE not in result.stderr


def test_when_consent_help_is_asked_then_under_13_states_its_default() -> None:
    result = gateway("consent", "--help")
    assert result.returncode == 0
    assert "(default: false)" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["consent", "--subject", "u1", "--grant", "analytics"], "(2 servers)"),
        (["consent", "--subject", "u1", "--tombstone"], "(2 servers)"),
        (["run", "--demo"], "(2 servers)"),
    ],
)
def test_when_the_cluster_cannot_be_reached_then_one_line_names_the_variable_not_the_address(
    args: list[str], expected: str
) -> None:
    result = gateway(*args, bootstrap="127.0.0.1:1,127.0.0.1:2")
    assert_one_line_refusal(result, f"{UNREACHABLE} {expected}: KafkaConnectionError")
    assert "127.0.0.1" not in result.stderr
    if args[0] == "consent":
        assert result.stderr.strip().endswith("nothing was published")
        assert len(result.stderr.strip().splitlines()) == 1
    else:
        assert result.stderr.strip().splitlines()[-1].startswith("gateway: refusing to start: ")
