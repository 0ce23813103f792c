"""The gateway on the secure local broker: SASL_SSL, SCRAM users, the ACLs of `gateway acls`.

One secure broker for the module (`gateway local up --secure`, set up for this stack's config
and app id); the worker runs over SASL_SSL as `User:gateway`; each partner's principal reads its
own sink and is refused everywhere else; the privacy team's principal (`User:privacy`) publishes
a tombstone and runs `gateway subject-report`, which neither the gateway nor a partner may;
wrong credentials, an untrusted CA, a protocol mismatch and a principal without the worker's
ACLs stop the start with one clear line; no password appears in the worker's log or /metrics.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

from devtools import secure_broker
from devtools.certs import write_tls_files
from gateway.consent_state import PURPOSES
from tests.integration.stack import SINKS, Stack

NOW = "2026-11-26T12:34:56.789Z"


def passwords() -> list[str]:
    creds = secure_broker.read_credentials()
    assert creds is not None
    users = creds["users"]
    assert isinstance(users, dict)
    return [str(p) for p in users.values()]


def secure_env(root: Path, user: str, password: str, ca_file: str) -> dict[str, str]:
    secret = root / f"{user}-{uuid.uuid4().hex[:6]}.password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": user,
        "KAFKA_SASL_PASSWORD_FILE": str(secret),
        "KAFKA_SSL_CAFILE": ca_file,
    }


@pytest.fixture(scope="module")
async def secure(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    root = tmp_path_factory.mktemp("secure")
    suffix = uuid.uuid4().hex[:8]
    stack = Stack("pending", root, suffix, app_id=f"gw-sec-{suffix}")
    broker, reused = await asyncio.to_thread(
        secure_broker.up, stack.config_dir, app_id=stack.app_id
    )
    stack.bootstrap = broker.state.bootstrap
    stack.security = secure_broker.client_security(secure_broker.ADMIN)  # the test's own clients
    creds = secure_broker.read_credentials()
    assert creds is not None
    users = creds["users"]
    assert isinstance(users, dict)
    stack.extra_env = secure_env(root, "gateway", users["gateway"], broker.ca_file)
    await stack.create_topics()  # as admin: the partners' reads below need the topics
    await stack.start()
    try:
        yield stack
    finally:
        await stack.close()
        if stack.proc is not None:
            stack.stop()
        if not reused:
            await asyncio.to_thread(secure_broker.down)


async def consume(stack: Stack, user: str, topic: str, group: str) -> list[Any]:
    """Read `topic` as `user` in `group` until idle; raises the broker's refusal."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=stack.bootstrap, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, **secure_broker.client_security(user).aiokafka(),
    )  # fmt: skip
    try:
        await consumer.start()
        got: list[Any] = []
        for _ in range(12):
            batch = await consumer.getmany(timeout_ms=500)
            got += [m for msgs in batch.values() for m in msgs]
            if got:
                break
        return got
    finally:
        await consumer.stop()


async def test_when_the_gateway_runs_over_sasl_ssl_then_each_partner_reads_its_own_sink(
    secure: Stack,
) -> None:
    subject = f"u-{uuid.uuid4().hex[:8]}"
    record = {
        "subject_id": subject, "updated_at": NOW, "purposes": dict.fromkeys(PURPOSES, True),
        "age": {"under_13": False, "parental_consent": False}, "source": "test",
    }  # fmt: skip
    await secure.consent(subject, record)
    await secure.event(
        "usage",
        {"event_id": "e-1", "subject_id": subject, "occurred_at": NOW, "event_type": "page_view"},
    )
    await secure.flush()
    await secure.wait_consumed(1)
    for sink in SINKS:
        got = await consume(secure, sink, secure.topics[sink], f"{sink}.it")
        assert len(got) == 1, sink


@pytest.mark.parametrize("partner", ["ads", "analytics"])
async def test_when_a_partner_reads_anything_but_its_sink_then_it_is_refused(
    secure: Stack, partner: str
) -> None:
    others = [s for s in SINKS if s != partner]
    refused = ["usage_raw", "device_raw", "consent", "audit", "dlq", "erasure", *others]
    for name in refused:
        with pytest.raises(TopicAuthorizationFailedError):
            await consume(secure, partner, secure.topics[name], f"{partner}.probe")
    with pytest.raises(GroupAuthorizationFailedError):  # another partner's group
        await consume(secure, partner, secure.topics[partner], f"{others[0]}.probe")


async def test_when_the_worker_ran_then_no_password_is_in_its_log_or_metrics(
    secure: Stack,
) -> None:
    text = secure.log_text()
    metrics = json.dumps(secure.metrics())
    assert "Worker ready" in text
    for password in passwords():
        assert password not in text
        assert password not in metrics


def start_refused(stack: Stack, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = stack.env() | env
    return subprocess.run(
        [sys.executable, "-m", "topologies.cli", "run"],
        capture_output=True, text=True, env=full, timeout=120, check=False,
    )  # fmt: skip


def run_as(
    stack: Stack, root: Path, user: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A `gateway` command with `user`'s credentials on the secure broker (or `env` on top)."""
    creds = secure_broker.read_credentials()
    assert creds is not None
    users = creds["users"]
    assert isinstance(users, dict)
    full = stack.env() | secure_env(root, user, users[user], str(creds["ca_file"])) | (env or {})
    return subprocess.run(
        stack.argv(*args), capture_output=True, text=True, env=full, timeout=120, check=False
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    for password in passwords():
        assert password not in result.stderr
    return lines[0]


async def test_when_the_privacy_team_erases_a_subject_then_its_principal_may_and_no_other(
    secure: Stack, tmp_path: Path
) -> None:
    subject = f"u-{uuid.uuid4().hex[:8]}"
    record = {
        "subject_id": subject, "updated_at": NOW, "purposes": dict.fromkeys(PURPOSES, True),
        "age": {"under_13": False, "parental_consent": False}, "source": "test",
    }  # fmt: skip
    await secure.consent(subject, record)
    consent_topic = secure.topics["consent"]
    tombstone = ("consent", "--subject", subject, "--tombstone")
    for user in ("gateway", "ads"):  # the gateway reads consent, never writes it; nor partners
        refused = await asyncio.to_thread(run_as, secure, tmp_path, user, *tombstone)
        assert_one_line(refused, f"User:{user}", consent_topic, "nothing was published")
    refused = await asyncio.to_thread(
        run_as, secure, tmp_path, "ads", "subject-report", "--subject", subject
    )
    assert_one_line(refused, "gateway subject-report:")
    assert subject not in refused.stdout + refused.stderr
    done = await asyncio.to_thread(run_as, secure, tmp_path, "privacy", *tombstone)
    assert done.returncode == 0, done.stderr
    assert f"published tombstone to {consent_topic}" in done.stdout
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        report = await asyncio.to_thread(
            run_as, secure, tmp_path, "privacy", "subject-report", "--subject", subject
        )
        assert report.returncode == 0, report.stderr
        shown = json.loads(report.stdout)
        notices = [n for s in shown["sinks"].values() for n in s["erasure_notices"]]
        if notices or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(1)
    assert shown["consent"]["known"] is False  # the tombstone was read back by the report
    assert notices and {n["reason"] for n in notices} == {"subject_erased"}


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("PLAINTEXT", "the listener speaks TLS but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not"),
        ("SSL", "the listener probably requires SASL, which KAFKA_SECURITY_PROTOCOL=SSL does not"),
    ],
)
def test_when_the_protocol_does_not_match_the_listener_then_the_start_names_the_mismatch(
    secure: Stack, tmp_path: Path, protocol: str, expected: str
) -> None:
    creds = secure_broker.read_credentials()
    assert creds is not None
    full = {k: v for k, v in secure.env().items() if not k.startswith(("KAFKA_SASL", "KAFKA_SSL"))}
    full["KAFKA_SECURITY_PROTOCOL"] = protocol
    if protocol == "SSL":
        full["KAFKA_SSL_CAFILE"] = str(creds["ca_file"])
    result = subprocess.run(
        secure.argv("run"), capture_output=True, text=True, env=full, timeout=120, check=False
    )
    line = assert_one_line(result, "cannot reach the Kafka cluster at KAFKA_BOOTSTRAP", expected)
    assert secure.bootstrap not in line


def test_when_the_worker_starts_as_a_principal_without_its_acls_then_one_line_names_topics(
    secure: Stack, tmp_path: Path
) -> None:
    result = run_as(secure, tmp_path, "ads", "run")
    line = assert_one_line(result, "the broker did not authorize User:ads to describe the topics")
    for name in ("usage_raw", "device_raw", "consent"):
        assert secure.topics[name] in line


@pytest.mark.parametrize("fault", ["wrong password", "untrusted CA", "no write ACL"])
def test_when_loadgen_cannot_connect_or_write_then_one_line(
    secure: Stack, tmp_path: Path, fault: str
) -> None:
    creds = secure_broker.read_credentials()
    assert creds is not None
    canary = f"wrong-canary-{uuid.uuid4().hex}"
    env = {
        "wrong password": secure_env(tmp_path, "gateway", canary, str(creds["ca_file"])),
        "untrusted CA": {
            "KAFKA_SSL_CAFILE": str(write_tls_files(tmp_path / "ca", ["127.0.0.1"]).ca_cert)
        },
        "no write ACL": {},  # the gateway's principal writes no raw or consent topic
    }[fault]
    result = run_as(secure, tmp_path, "gateway", "loadgen", "--count", "5", env=env)
    assert_one_line(
        result,
        {
            "wrong password": "the broker refused the SASL credentials",
            "untrusted CA": "the broker's TLS certificate is not trusted",
            "no write ACL": "the broker did not authorize User:gateway to write to the topic",
        }[fault],
    )
    assert canary not in result.stderr


def test_when_the_password_is_wrong_then_the_start_is_refused_in_one_clear_line(
    secure: Stack, tmp_path: Path
) -> None:
    canary = f"wrong-canary-{uuid.uuid4().hex}"
    creds = secure_broker.read_credentials()
    assert creds is not None
    result = start_refused(secure, secure_env(tmp_path, "gateway", canary, str(creds["ca_file"])))
    assert result.returncode == 2, result.stderr
    assert "the broker refused the SASL credentials" in result.stderr
    assert canary not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_when_the_ca_does_not_sign_the_broker_then_the_start_is_refused_in_one_clear_line(
    secure: Stack, tmp_path: Path
) -> None:
    other = write_tls_files(tmp_path / "other-ca", ["127.0.0.1"]).ca_cert
    creds = secure_broker.read_credentials()
    assert creds is not None
    users = creds["users"]
    assert isinstance(users, dict)
    result = start_refused(secure, secure_env(tmp_path, "gateway", users["gateway"], str(other)))
    assert result.returncode == 2, result.stderr
    assert "the broker's TLS certificate is not trusted" in result.stderr
    assert "Traceback" not in result.stderr
