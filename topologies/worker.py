"""`gateway run`: load and check everything, prepare the topics, then run the faust worker.

Start-up fails closed and says why: invalid settings (environment) or an invalid config list
every problem; missing keys are listed (only `--demo` makes ephemeral keys); raw and consent
topics that are not co-partitioned stop the start. Missing topics are created (consent
compacted) with the raw topics' partitions. A cluster that cannot be reached, or that does not
authorize the principal on the topics, stops the start with one line naming the cause
(`unreachable`, `not_authorized`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.engine import Engine
from gateway.errors import GatewayError
from gateway.keys import KeyringError, load_keyring
from gateway.metrics import BuildInfo, GatewayMetrics
from topologies.admin import (
    TopicsNotAuthorizedError,
    TopicSpec,
    describe_partitions,
    ensure_topics,
)
from topologies.outage import quiet_aiokafka_repeats
from topologies.security import PLAINTEXT, ClientSecurity, resolve_security
from topologies.settings import (
    SASL_PROTOCOLS,
    KafkaClientSettings,
    SettingsError,
    WorkerSettings,
    load_settings,
)

log = logging.getLogger("gateway.worker")


class StartError(GatewayError, RuntimeError):
    """The worker refuses to start; the message says why and what to do."""


def load_checked_settings(**overrides: Any) -> WorkerSettings:
    """The environment's settings (`overrides` on top), or a `StartError` listing every problem."""
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise StartError("the environment is invalid:\n" + "\n".join(exc.problems)) from exc


def load_checked_security(settings: KafkaClientSettings) -> ClientSecurity:
    """The clients' security options (secret files read), or a `StartError` naming each problem."""
    try:
        return resolve_security(settings)
    except SettingsError as exc:
        raise StartError(
            "the Kafka client security settings are unusable:\n" + "\n".join(exc.problems)
        ) from exc


# What aiokafka's connection errors say, and what the operator should check (the security
# settings are the usual cause when a reachable broker refuses the connection).
_CONNECTION_HINTS = (
    ("SaslAuthenticationFailed", "the broker refused the SASL credentials (check "
     "KAFKA_SASL_USERNAME, the password and KAFKA_SASL_MECHANISM)"),
    ("CERTIFICATE_VERIFY_FAILED", "the broker's TLS certificate is not trusted (check "
     "KAFKA_SSL_CAFILE) or does not name the host (KAFKA_SSL_CHECK_HOSTNAME)"),
    ("UnsupportedSaslMechanism", "the broker does not offer KAFKA_SASL_MECHANISM"),
    ("WRONG_VERSION_NUMBER", "TLS to a listener that does not speak it (check "
     "KAFKA_SECURITY_PROTOCOL)"),
)  # fmt: skip
# A client without TLS reads the listener's TLS alert as a Kafka response size: aiokafka's debug
# line "... N bytes read on a total of M expected bytes" with M's first bytes a TLS record header
# (content type 0x14-0x17, major version 3).
_EXPECTED_BYTES = re.compile(r"on a total of (\d+) expected bytes")
_SPEAKS_TLS = (
    "the listener speaks TLS but KAFKA_SECURITY_PROTOCOL={protocol} does not (use SSL or SASL_SSL)"
)
# A client without SASL: the broker answers ApiVersions, then closes the connection at the
# first other request, as a SASL listener does before authentication.
_WANTS_SASL = (
    "the broker closed the connection at the first request after the handshake: the listener "
    "probably requires SASL, which KAFKA_SECURITY_PROTOCOL={protocol} does not use (use SASL_SSL "
    "or SASL_PLAINTEXT with KAFKA_SASL_*)"
)


def _tls_record_header(size: int) -> bool:
    return 0x14 <= size >> 24 <= 0x17 and (size >> 16) & 0xFF == 3


class ConnectionTrouble(logging.Handler):
    """Collects why aiokafka failed to connect, as fixed hints (never its text or addresses).

    `protocol` (KAFKA_SECURITY_PROTOCOL) lets it name a protocol mismatch: a client without TLS
    at a TLS listener, or a client without SASL at a SASL listener.
    """

    def __init__(self, protocol: str | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.protocol = protocol
        self.hints: list[str] = []

    def _hint(self, hint: str) -> None:
        if hint not in self.hints:
            self.hints.append(hint)

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the hint of each known cause the record names (once)."""
        text = record.getMessage()
        for marker, hint in _CONNECTION_HINTS:
            if marker in text:
                self._hint(hint)
        if self.protocol is None:
            return
        expected = _EXPECTED_BYTES.search(text)
        if expected is not None and _tls_record_header(int(expected.group(1))):
            self._hint(_SPEAKS_TLS.format(protocol=self.protocol))
        sasl = self.protocol in SASL_PROTOCOLS
        if not sasl and "Unable to request metadata" in text and "closed" in text:
            self._hint(_WANTS_SASL.format(protocol=self.protocol))


def unreachable(bootstrap: str, error: Exception, trouble: ConnectionTrouble | None = None) -> str:
    """One line saying the cluster could not be reached: the server count, never the addresses.

    With `trouble` (from `quiet_kafka_client`), the known causes are named too: refused SASL
    credentials, an untrusted certificate, a protocol mismatch.
    """
    count = len(bootstrap.split(","))
    servers = "1 server" if count == 1 else f"{count} servers"
    text = f"cannot reach the Kafka cluster at KAFKA_BOOTSTRAP ({servers}): {type(error).__name__}"
    if trouble is not None and trouble.hints:
        text += ": " + "; ".join(trouble.hints)
    return text


def principal_of(settings: KafkaClientSettings) -> str:
    """The principal the settings authenticate as, for messages: `User:NAME` with SASL."""
    if settings.security_protocol in SASL_PROTOCOLS and settings.sasl_username:
        return f"User:{settings.sasl_username}"
    return "this client's principal"


def not_authorized(settings: KafkaClientSettings, action: str, topics: Iterable[str]) -> str:
    """One line: the broker's ACLs do not let this principal `action` the topics (no secrets)."""
    names = sorted(set(topics))
    word = "topic" if len(names) == 1 else "topics"
    return (
        f"the broker did not authorize {principal_of(settings)} to {action} the {word} "
        f"{', '.join(names)}; check its ACLs (`gateway acls` prints the ones each principal needs)"
    )


@contextlib.contextmanager
def quiet_kafka_client(protocol: str | None = None) -> Iterator[ConnectionTrouble]:
    """Silence aiokafka's own log while a command first talks to the cluster.

    Its connection errors name each address; the command says what failed in one line instead,
    with the causes the yielded `ConnectionTrouble` recognised (`protocol`, the settings'
    KAFKA_SECURITY_PROTOCOL, lets it name a protocol mismatch). Every aiokafka record reaches
    only that handler, which keeps fixed hints and never the records' text.
    """
    logger = logging.getLogger("aiokafka")
    level, propagate = logger.level, logger.propagate
    trouble = ConnectionTrouble(protocol)
    logger.setLevel(logging.DEBUG if protocol is not None else logging.ERROR)
    logger.propagate = False
    logger.addHandler(trouble)
    try:
        yield trouble
    finally:
        logger.removeHandler(trouble)
        logger.setLevel(level)
        logger.propagate = propagate


def load_checked_config(directory: Path) -> GatewayConfig:
    """The config in `directory`, or a `StartError` listing every problem with file and line."""
    try:
        return load_config(directory)
    except ConfigError as exc:
        raise StartError("the config is invalid:\n" + "\n".join(map(str, exc.problems))) from exc


def topic_specs(config: GatewayConfig, partitions: int) -> list[TopicSpec]:
    """Every topic the worker reads or writes, `partitions` each; the consent topic compacted."""
    topics = config.settings.topics
    specs = [
        TopicSpec(topics.usage_raw, partitions),
        TopicSpec(topics.device_raw, partitions),
        TopicSpec(topics.consent, partitions, compacted=True),
        TopicSpec(topics.dlq, partitions),
        TopicSpec(topics.audit, partitions),
        TopicSpec(topics.erasure, partitions),
    ]
    specs += [TopicSpec(rule.topic, partitions) for rule in config.sinks]
    return specs


async def prepare_topics(
    bootstrap: str,
    config: GatewayConfig,
    partitions: int,
    *,
    security: ClientSecurity = PLAINTEXT,
) -> tuple[int, dict[str, int]]:
    """Create missing topics and check co-partitioning (`security`: the admin client's).

    Returns the raw topics' shared partition count and the partition count of every topic.
    """
    topics = config.settings.topics
    copartitioned = [topics.usage_raw, topics.device_raw, topics.consent]
    existing = await describe_partitions(bootstrap, copartitioned, security=security)
    counts = set(existing.values())
    if len(counts) > 1:
        raise StartError(_not_copartitioned(existing))
    shared = counts.pop() if counts else partitions
    final = await ensure_topics(bootstrap, topic_specs(config, shared), security=security)
    check = {name: final.get(name, 0) for name in copartitioned}
    if len(set(check.values())) != 1:
        raise StartError(_not_copartitioned(check))
    return shared, final


def prepare_checked_topics(
    settings: WorkerSettings, config: GatewayConfig, security: ClientSecurity
) -> tuple[int, dict[str, int]]:
    """`prepare_topics` for a command, its refusals as one-line `StartError`s.

    An unreachable cluster (with the recognised cause) or a principal without the topics' ACLs
    (naming the topics); never an address or a secret.
    """
    try:
        with quiet_kafka_client(settings.security_protocol) as trouble:
            return asyncio.run(
                prepare_topics(settings.bootstrap, config, settings.partitions, security=security)
            )
    except KafkaConnectionError as exc:
        raise StartError(unreachable(settings.bootstrap, exc, trouble)) from None
    except TopicsNotAuthorizedError as exc:
        raise StartError(not_authorized(settings, exc.action, exc.topics)) from None


def _not_copartitioned(counts: Mapping[str, int]) -> str:
    listed = ", ".join(f"{name} has {n}" for name, n in sorted(counts.items()))
    return (
        "the raw event topics and the consent topic must have the same number of partitions "
        f"(co-partitioned), but {listed}; repartition them or point the config at topics that are"
    )


def build_metrics(config: GatewayConfig, registry: CollectorRegistry) -> GatewayMetrics:
    """The worker's metrics in `registry`: labelled for the config's sinks and raw topics.

    The build info (gateway, Python, faust and aiokafka versions) and the loaded config's
    version are set at once.
    """
    import aiokafka
    import faust

    from topologies import __version__

    topics = config.settings.topics
    metrics = GatewayMetrics(
        registry,
        sinks=[rule.name for rule in config.sinks],
        topics=[topics.usage_raw, topics.device_raw],
        build_info=BuildInfo(
            version=__version__,
            python_version=platform.python_version(),
            faust_version=faust.__version__,
            aiokafka_version=aiokafka.__version__,
        ),
    )
    metrics.config_loaded(config.version)
    return metrics


def run(settings: WorkerSettings, *, demo: bool) -> int:
    """Run the worker until SIGTERM/SIGINT; returns the process exit code."""
    import faust
    from prometheus_client import start_http_server

    from topologies.app import Tuning, build_app

    config = load_checked_config(settings.config_dir)
    security = load_checked_security(settings)
    names = [rule.name for rule in config.sinks]
    try:
        keyring = load_keyring(
            os.environ, names, secret_file=settings.keys_file, demo=demo, random_bytes=os.urandom
        )
    except KeyringError as exc:
        raise StartError(
            "pseudonym keys are missing or invalid (use --demo for ephemeral demo keys):\n"
            + "\n".join(exc.problems)
        ) from exc
    if demo:
        print(
            "DEMO MODE: ephemeral random pseudonym keys; pseudonyms change at every start. "
            "Never use --demo in production.",
            file=sys.stderr,
        )
    engine = Engine(config, keyring)
    partitions, output_partitions = prepare_checked_topics(settings, config, security)
    registry = CollectorRegistry()
    metrics = build_metrics(config, registry)
    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    print(
        f"gateway: config {config.version}, {len(names)} sinks ({', '.join(names)}), "
        f"{partitions} partitions, broker {settings.bootstrap}, "
        f"metrics http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        file=sys.stderr,
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = build_app(
        app_id=settings.app_id,
        bootstrap=settings.bootstrap,
        config=config,
        engine=engine,
        keyring=keyring,
        metrics=metrics,
        partitions=partitions,
        output_partitions=output_partitions,
        tuning=Tuning.from_settings(settings),
        config_dir=settings.config_dir,
        security=security,
        load_keys=None
        if demo
        else lambda sinks: load_keyring(os.environ, sinks, secret_file=settings.keys_file),
    )
    worker = faust.Worker(app, loglevel=settings.log_level, loop=loop, override_logging=True)
    quiet_aiokafka_repeats()  # an outage makes aiokafka log every failed request
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
