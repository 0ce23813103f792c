"""`gateway subject-report` on a real broker: transactions, refusals and an unreachable cluster.

No worker runs: the topics are created as `gateway run` would, records are produced by the
test, and the command runs as a subprocess, as a privacy team runs it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from gateway.consent_state import PURPOSES
from gateway.subject_report import STICKY_GPC_UNKNOWN
from tests.integration.test_erasure import ErasureStack, new_stack

NOW = "2026-11-26T12:34:56.789Z"


def granted(subject: str) -> bytes:
    return orjson.dumps({
        "subject_id": subject, "updated_at": NOW, "purposes": dict.fromkeys(PURPOSES, True),
        "age": {"under_13": False, "parental_consent": False}, "source": "test",
    })  # fmt: skip


def run_report(
    stack: ErasureStack, subject: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        stack.argv("subject-report", "--subject", subject),
        env={**os.environ, **stack.env(), **env}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    return result, time.monotonic() - started


async def report(stack: ErasureStack, subject: str, **env: str) -> dict[str, Any]:
    result, _ = await asyncio.to_thread(run_report, stack, subject, **env)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = orjson.loads(result.stdout)
    return parsed


async def test_when_the_consent_topic_ends_with_a_transaction_marker_then_the_report_still_ends(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path, gpc="sticky")
    await stack.create_topics()
    subject = f"u-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{stack.suffix}"
    )
    await producer.start()
    try:
        async with producer.transaction():  # the commit marker is the partition's last offset
            await producer.send_and_wait(
                stack.topics["consent"], granted(subject), key=subject.encode()
            )
    finally:
        await producer.stop()

    result, seconds = await asyncio.to_thread(run_report, stack, subject)
    assert result.returncode == 0, result.stderr
    assert seconds < 30, "read to the end offset, not waiting for the marker as a record"
    parsed = orjson.loads(result.stdout)
    assert parsed["consent"]["known"] is True
    assert parsed["sinks"]["ads"]["reason"] == "consented"
    # gpc: sticky, and the report cannot see a kept signal on the consent topic: unknown.
    assert parsed["consent"]["sticky_gpc"] is None
    assert parsed["consent"]["sticky_gpc_unknown"] == STICKY_GPC_UNKNOWN


async def test_when_a_topic_does_not_exist_then_the_report_names_it_in_one_line(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path)
    await stack.create_topics()
    settings = stack.config_dir / "gateway.yaml"
    settings.write_text(
        settings.read_text().replace(stack.topics["erasure"], f"missing.{stack.suffix}")
    )
    result, _ = await asyncio.to_thread(run_report, stack, "u-1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"gateway subject-report: cannot read missing.{stack.suffix}: it does not exist;"
        " no report\n"
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_when_the_cluster_is_unreachable_then_the_report_says_so_in_one_line(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path)
    address = f"127.0.0.1:{closed_port()}"
    result, _ = await asyncio.to_thread(run_report, stack, "u-1", KAFKA_BOOTSTRAP=address)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "gateway subject-report: cannot reach the Kafka cluster at KAFKA_BOOTSTRAP (1 server)"
    )
    assert address not in result.stderr and "Traceback" not in result.stderr


def secure_env(root: Path, user: str, password: str, ca_file: str) -> dict[str, str]:
    secret = root / f"{user}.password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": user, "KAFKA_SASL_PASSWORD_FILE": str(secret),
        "KAFKA_SSL_CAFILE": ca_file,
    }  # fmt: skip


async def test_when_the_principal_may_not_read_a_topic_then_the_report_names_it_and_exits_2(
    tmp_path: Path,
) -> None:
    from devtools import secure_broker

    stack = new_stack("pending", tmp_path, app_id=f"gw-sec-{uuid.uuid4().hex[:8]}")
    broker, reused = await asyncio.to_thread(
        secure_broker.up, stack.config_dir, app_id=stack.app_id
    )
    try:
        stack.bootstrap = broker.state.bootstrap
        stack.security = secure_broker.client_security(secure_broker.ADMIN)
        await stack.create_topics()
        creds = secure_broker.read_credentials()
        assert creds is not None and isinstance(creds["users"], dict)
        users = creds["users"]
        subject = f"u-{uuid.uuid4().hex[:8]}"

        privacy = secure_env(tmp_path, "privacy", users["privacy"], broker.ca_file)
        allowed = await report(stack, subject, **privacy)
        assert allowed["consent"]["known"] is False, "the privacy team may read both topics"

        partner = secure_env(tmp_path, "ads", users["ads"], broker.ca_file)
        result, _ = await asyncio.to_thread(run_report, stack, subject, **partner)
        assert (result.returncode, result.stdout) == (2, ""), "never `known: false` instead"
        assert result.stderr == (
            f"gateway subject-report: cannot read {stack.topics['consent']}: not authorized to"
            " describe or read it; no report\n"
        )

        wrong = secure_env(tmp_path, "privacy", "not-the-password", broker.ca_file)
        result, _ = await asyncio.to_thread(run_report, stack, subject, **wrong)
        assert (result.returncode, result.stdout) == (2, "")
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "the broker refused the SASL credentials" in result.stderr
        assert "not-the-password" not in result.stderr and "Traceback" not in result.stderr
    finally:
        await stack.close()
        if not reused:
            await asyncio.to_thread(secure_broker.down)
