"""Start-up refusals name their cause: a protocol mismatch, a principal the ACLs do not cover.

aiokafka's log records are read by `ConnectionTrouble`, which keeps fixed hints only; the
topic admin raises `TopicsNotAuthorizedError` for topics the broker refuses to describe or
create; `gateway consent` turns the broker's refusal to let it write into one line, exit 2.
The real secure broker shows the same in tests/integration/test_secure_broker.py.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import pytest

from topologies import admin, consent_cli
from topologies.admin import TopicsNotAuthorizedError, TopicSpec, ensure_topics, partition_counts
from topologies.settings import KafkaClientSettings
from topologies.worker import ConnectionTrouble, not_authorized, quiet_kafka_client


def logged(trouble: ConnectionTrouble, message: str, *args: object) -> None:
    trouble.handle(logging.LogRecord("aiokafka.conn", logging.DEBUG, __file__, 1, message, args,
                                     None))  # fmt: skip


# What aiokafka 0.14 logged against the secure local broker (a SASL_SSL listener).
TLS_ALERT_READ = (
    "Closing connection at %s:%s (%s, %s bytes read on a total of %s expected bytes)",
    "127.0.0.1",
    9093,
    0,
    3,
    352518912,  # 0x15030300: a TLS alert record's header
)
CLOSED_AFTER_API_VERSIONS = (
    'Unable to request metadata from "%s": %s',
    "127.0.0.1:9093",
    "KafkaConnectionError: Connection at 127.0.0.1:9093 closed",
)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_when_a_client_without_tls_reads_a_tls_alert_then_the_protocol_mismatch_is_named(
    protocol: str,
) -> None:
    trouble = ConnectionTrouble(protocol)
    logged(trouble, *TLS_ALERT_READ)
    assert trouble.hints == [
        f"the listener speaks TLS but KAFKA_SECURITY_PROTOCOL={protocol} does not "
        "(use SSL or SASL_SSL)"
    ]


def test_when_a_client_without_sasl_is_cut_off_at_its_first_request_then_sasl_is_named() -> None:
    trouble = ConnectionTrouble("SSL")
    logged(trouble, *CLOSED_AFTER_API_VERSIONS)
    assert len(trouble.hints) == 1
    assert "the listener probably requires SASL" in trouble.hints[0]
    assert "KAFKA_SECURITY_PROTOCOL=SSL" in trouble.hints[0]
    assert "127.0.0.1" not in trouble.hints[0]


def test_when_sasl_is_used_or_the_size_is_an_ordinary_one_then_no_mismatch_is_claimed() -> None:
    sasl = ConnectionTrouble("SASL_SSL")
    logged(sasl, *CLOSED_AFTER_API_VERSIONS)
    plain = ConnectionTrouble("PLAINTEXT")
    logged(plain, TLS_ALERT_READ[0], "127.0.0.1", 9092, 0, 4, 1024)
    unknown = ConnectionTrouble()  # no protocol given: only the fixed markers
    logged(unknown, *TLS_ALERT_READ)
    assert sasl.hints == plain.hints == unknown.hints == []


def test_when_quiet_with_a_protocol_then_debug_records_reach_only_the_trouble_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG), quiet_kafka_client("PLAINTEXT") as trouble:
        logging.getLogger("aiokafka.conn").debug(*TLS_ALERT_READ)
    assert trouble.hints
    assert "expected bytes" not in caplog.text
    assert logging.getLogger("aiokafka").level == logging.NOTSET


def test_when_not_authorized_then_the_line_names_the_user_and_topics_never_the_password() -> None:
    settings = KafkaClientSettings(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_USERNAME="ads",
        KAFKA_SASL_PASSWORD="s3cr3t-canary",
    )  # type: ignore[call-arg]  # fmt: skip
    line = not_authorized(settings, "describe", ["t.b", "t.a", "t.b"])
    assert line.startswith("the broker did not authorize User:ads to describe the topics t.a, t.b;")
    assert "\n" not in line and "s3cr3t" not in line


class FakeAdmin:
    """aiokafka's admin client as the secure broker answered a partner's principal."""

    def __init__(self, describe: dict[str, int], create: dict[str, int], **_: Any) -> None:
        self.describe, self.create = describe, create

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [{"topic": n, "error_code": self.describe.get(n, 0), "partitions": [{}]}
                for n in names]  # fmt: skip

    async def create_topics(self, topics: list[Any], timeout_ms: int) -> Any:
        errors = [(t.name, self.create.get(t.name, 0), None) for t in topics]
        return argparse.Namespace(topic_errors=errors)


async def test_when_the_principal_may_not_describe_topics_then_they_are_named_at_once() -> None:
    fake = FakeAdmin({"raw": 29, "consent": 29}, {})
    with pytest.raises(TopicsNotAuthorizedError) as caught:
        await partition_counts(fake, ["raw", "consent", "sink"])  # type: ignore[arg-type]
    assert (caught.value.action, caught.value.topics) == ("describe", ["consent", "raw"])


async def test_when_the_principal_may_not_create_missing_topics_then_no_30_second_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeAdmin({"new": 3}, {"new": 29})
    monkeypatch.setattr(admin, "AIOKafkaAdminClient", lambda **kw: fake)
    with pytest.raises(TopicsNotAuthorizedError) as caught:
        await ensure_topics("127.0.0.1:9092", [TopicSpec("new", 1), TopicSpec("old", 1)])
    assert (caught.value.action, caught.value.topics) == ("create", ["new"])


def test_when_the_broker_refuses_the_consent_write_then_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def refused(bootstrap: str, topic: str, *args: Any, **kwargs: Any) -> tuple[int, int]:
        raise TopicsNotAuthorizedError("write to", [topic])

    monkeypatch.setattr(consent_cli, "publish_consent", refused)
    for name in ("KAFKA_BOOTSTRAP", "KAFKA_SECURITY_PROTOCOL", "GATEWAY_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    args = argparse.Namespace(
        subject="u-1", grant="", deny="", under_13=None, parental_consent=False, tombstone=True,
        file=None, config=None, metrics_port=None,
    )  # fmt: skip
    assert consent_cli._consent(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(
        "gateway consent: the broker did not authorize this client's principal to write to the "
        "topic consent.state;"
    )
    assert err[0].endswith("nothing was published (the privacy team's principal may write consent)")
