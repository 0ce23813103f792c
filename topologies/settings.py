"""The worker's settings: every environment variable `gateway run` reads, in one model.

Each field names its variable (`KAFKA_BOOTSTRAP`, `GATEWAY_*`), its type, its unit, its bounds
and its default; `gateway run --help` and the README's environment table are made from it.
`load_settings` reports every invalid variable at once (`NAME: what is wrong`, never the value)
as a `SettingsError`, which the command turns into exit 2 like an invalid config.

Per-sink pseudonym keys (`GATEWAY_KEY_<SINK>`, `GATEWAY_PREVIOUS_KEY_<SINK>`) are not here: their
names depend on the config's sinks, and `gateway.keys` reads them.

How every Kafka client reaches and authenticates to the cluster (`KAFKA_BOOTSTRAP`,
`KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*`, `KAFKA_SSL_*`) is one model, `KafkaClientSettings`,
which `WorkerSettings` extends; `topologies.security` turns it into the clients' options.
Passwords are `SecretStr` (never in `repr`, logs or messages); a password may instead come from
an owner-only file (`*_FILE`), read by `topologies.security` at start.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.errors import GatewayError

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
ConsentStoreKind = Literal["memory", "rocksdb"]
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
SSL_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})


class SettingsError(GatewayError, ValueError):
    """Invalid environment variables; `problems` holds one `NAME: message` line for each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class KafkaClientSettings(BaseSettings):
    """How every Kafka client of the gateway reaches the cluster: servers, TLS and SASL.

    Read by `gateway run` (all its clients: faust's, the raw reader, the consent feed, the
    offsets client, the producers and the topic admin), `gateway consent` and `gateway loadgen`.
    Passwords are `SecretStr`, never shown; `security_problems` lists settings that contradict
    each other, and `topologies.security.resolve_security` reads the files.
    """

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", case_sensitive=True, validate_by_name=True
    )

    bootstrap: str = Field(
        "127.0.0.1:9092",
        validation_alias="KAFKA_BOOTSTRAP",
        min_length=1,
        description="Kafka bootstrap servers, `host:port[,host:port...]`",
    )
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT",
        validation_alias="KAFKA_SECURITY_PROTOCOL",
        description="how clients talk to the cluster: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    sasl_mechanism: SaslMechanism = Field(
        "SCRAM-SHA-512",
        validation_alias="KAFKA_SASL_MECHANISM",
        description="SASL mechanism with SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
    )
    sasl_username: str | None = Field(
        None,
        validation_alias="KAFKA_SASL_USERNAME",
        min_length=1,
        description="the SASL user (the principal `User:NAME`), required with SASL_*",
    )
    sasl_password: SecretStr | None = Field(
        None,
        validation_alias="KAFKA_SASL_PASSWORD",
        min_length=1,
        description="the SASL password (a secret: never logged); or `KAFKA_SASL_PASSWORD_FILE`",
    )
    sasl_password_file: Path | None = Field(
        None,
        validation_alias="KAFKA_SASL_PASSWORD_FILE",
        description="an owner-only file holding the SASL password (one trailing newline ignored)",
    )
    ssl_cafile: Path | None = Field(
        None,
        validation_alias="KAFKA_SSL_CAFILE",
        description="PEM file of the CA certificates that sign the brokers' certificates "
        "(none: the system's CAs), with SSL or SASL_SSL",
    )
    ssl_certfile: Path | None = Field(
        None,
        validation_alias="KAFKA_SSL_CERTFILE",
        description="PEM client certificate (chain), for brokers that ask for one",
    )
    ssl_keyfile: Path | None = Field(
        None,
        validation_alias="KAFKA_SSL_KEYFILE",
        description="PEM private key of the client certificate (an owner-only file)",
    )
    ssl_key_password: SecretStr | None = Field(
        None,
        validation_alias="KAFKA_SSL_KEY_PASSWORD",
        min_length=1,
        description="passphrase of an encrypted client key (a secret: never logged); "
        "or `KAFKA_SSL_KEY_PASSWORD_FILE`",
    )
    ssl_key_password_file: Path | None = Field(
        None,
        validation_alias="KAFKA_SSL_KEY_PASSWORD_FILE",
        description="an owner-only file holding the client key's passphrase",
    )
    ssl_check_hostname: bool = Field(
        True,
        validation_alias="KAFKA_SSL_CHECK_HOSTNAME",
        description="check that each broker's certificate names the host connected to",
    )

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def security_problems(self) -> list[str]:
        """Settings that contradict each other, as `NAME: message` lines (no value quoted).

        SASL protocols need a user and exactly one password source; SASL or TLS settings given
        with a protocol that would not use them are refused rather than silently ignored.
        """
        protocol = self.security_protocol
        problems = []
        sasl = {
            "sasl_username": self.sasl_username, "sasl_password": self.sasl_password,
            "sasl_password_file": self.sasl_password_file,
        }  # fmt: skip
        tls = {
            "ssl_cafile": self.ssl_cafile, "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile, "ssl_key_password": self.ssl_key_password,
            "ssl_key_password_file": self.ssl_key_password_file,
        }  # fmt: skip
        for given, used_by in ((sasl, SASL_PROTOCOLS), (tls, SSL_PROTOCOLS)):
            if protocol not in used_by:
                problems += [
                    f"{variable(name)}: is set, but KAFKA_SECURITY_PROTOCOL={protocol} does not "
                    f"use it ({' or '.join(sorted(used_by))} does)"
                    for name, value in given.items()
                    if value is not None
                ]
        if protocol in SASL_PROTOCOLS:
            if self.sasl_username is None:
                problems.append(f"KAFKA_SASL_USERNAME: is required with {protocol}")
            problems += _one_of(self, "sasl_password", "sasl_password_file", required=protocol)
        if protocol in SSL_PROTOCOLS:
            problems += _one_of(self, "ssl_key_password", "ssl_key_password_file", required=None)
            if self.ssl_keyfile is not None and self.ssl_certfile is None:
                problems.append("KAFKA_SSL_KEYFILE: is set without KAFKA_SSL_CERTFILE")
            has_passphrase = self.ssl_key_password or self.ssl_key_password_file
            if has_passphrase and self.ssl_certfile is None:
                problems.append("KAFKA_SSL_KEY_PASSWORD: is set without a client certificate")
        return problems


def _one_of(
    settings: KafkaClientSettings, value: str, file: str, *, required: str | None
) -> list[str]:
    given = [name for name in (value, file) if getattr(settings, name) is not None]
    if len(given) == 2:
        return [f"{variable(file)}: set either {variable(value)} or {variable(file)}, not both"]
    if not given and required is not None:
        return [f"{variable(value)}: is required with {required} (or {variable(file)})"]
    return []


class WorkerSettings(KafkaClientSettings):
    """What one worker process is told by its environment (and `--config`, `--metrics-port`).

    The cluster's address and security are `KafkaClientSettings`' fields, inherited.
    """

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", case_sensitive=True, validate_by_name=True
    )

    config_dir: Path = Field(
        Path("config"),
        validation_alias="GATEWAY_CONFIG_DIR",
        description="the config folder (`gateway.yaml` and `sinks/`)",
    )
    keys_file: Path | None = Field(
        None,
        validation_alias="GATEWAY_KEYS_FILE",
        description="a YAML/JSON secret file `{sink: {id, key, previous: {id, key}}}` "
        "instead of `GATEWAY_KEY_<SINK>` variables",
    )
    app_id: str = Field(
        "privacy-gateway",
        validation_alias="GATEWAY_APP_ID",
        min_length=1,
        description="the consumer group; workers with one id share the partitions",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        validation_alias="GATEWAY_METRICS_HOST",
        min_length=1,
        description="address the `/metrics` endpoint listens on",
    )
    metrics_port: int = Field(
        9108,
        validation_alias="GATEWAY_METRICS_PORT",
        ge=1,
        le=65535,
        description="TCP port of the `/metrics` endpoint (1-65535)",
    )
    partitions: int = Field(
        6,
        validation_alias="GATEWAY_PARTITIONS",
        ge=1,
        le=10_000,
        description="partitions of topics the worker creates (existing raw topics win), 1-10000",
    )
    log_level: LogLevel = Field(
        "info",
        validation_alias="GATEWAY_LOG_LEVEL",
        description="worker log level: debug, info, warning, error or critical",
    )
    batch_max: int = Field(
        2000,
        validation_alias="GATEWAY_BATCH_MAX",
        ge=1,
        le=100_000,
        description="raw records decided per batch, at most (1-100000)",
    )
    linger_ms: int = Field(
        5,
        validation_alias="GATEWAY_LINGER_MS",
        ge=0,
        le=10_000,
        description="milliseconds the output producer waits to fill a request (0-10000)",
    )
    max_batch_bytes: int = Field(
        1024 * 1024,
        validation_alias="GATEWAY_MAX_BATCH_BYTES",
        ge=16 * 1024,
        le=64 * 1024 * 1024,
        description="bytes per output partition batch of the producer (16 KiB-64 MiB); "
        "a request may carry four",
    )
    commit_interval: float = Field(
        1.0,
        validation_alias="GATEWAY_COMMIT_INTERVAL",
        gt=0,
        le=60,
        description="seconds between offset commits of acknowledged batches (over 0, up to 60)",
    )
    max_inflight: int = Field(
        4,
        validation_alias="GATEWAY_MAX_INFLIGHT",
        ge=1,
        le=64,
        description="batches whose outputs may await acknowledgement at once (1-64)",
    )
    consent_store: ConsentStoreKind = Field(
        "memory",
        validation_alias="GATEWAY_CONSENT_STORE",
        description="where the consent table lives: `memory` (restored from its changelog at "
        "every start) or `rocksdb` (on disk in `GATEWAY_CONSENT_STORE_DIR`, kept across "
        "restarts; docs/consent-store.md)",
    )
    consent_store_dir: Path = Field(
        Path("consent-store"),
        validation_alias="GATEWAY_CONSENT_STORE_DIR",
        description="the directory of the `rocksdb` consent store, one per worker; it holds "
        "subject ids, so it is as sensitive as the consent topic",
    )
    consent_store_cache_bytes: int = Field(
        256 * 1024 * 1024,
        validation_alias="GATEWAY_CONSENT_STORE_CACHE_BYTES",
        ge=8 * 1024 * 1024,
        le=64 * 1024 * 1024 * 1024,
        description="bytes of the block cache the `rocksdb` store's partitions share "
        "(8 MiB-64 GiB)",
    )

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",")]
        for number, entry in enumerate(entries, 1):
            problem = bootstrap_problem(entry)
            if problem is not None:
                where = f"server {number} of {len(entries)}" if len(entries) > 1 else "the server"
                raise PydanticCustomError(
                    "kafka_bootstrap", f"{where} {problem}; expected host:port[,host:port...]"
                )
        return ",".join(entries)

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        from gateway.acls import app_id_problem

        problem = app_id_problem(value)
        if problem is not None:
            raise PydanticCustomError("gateway_app_id", problem)
        return value

    @field_validator("log_level", "consent_store", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


def bootstrap_problem(entry: str) -> str | None:
    """What is wrong with one `host:port` of `KAFKA_BOOTSTRAP` (never quoting it), or None.

    IPv6 addresses go in brackets (`[::1]:9092`); the port is required and within 1-65535.
    """
    if not entry:
        return "is empty"
    if entry.startswith("["):
        host, closed, rest = entry[1:].partition("]")
        if not closed:
            return "has an IPv6 address without its closing bracket"
        if not rest.startswith(":"):
            return "has no port"
        port = rest[1:]
    else:
        host, colon, port = entry.rpartition(":")
        if not colon:
            return "has no port"
        if ":" in host:
            return "has an IPv6 address without brackets ([address]:port)"
    if not host or any(char.isspace() for char in host):
        return "has no host" if not host else "has a host with spaces"
    if not (port.isascii() and port.isdigit()):
        return "has a port that is not a number"
    if not 1 <= int(port) <= 65535:
        return "has a port outside 1-65535"
    return None


def variable(name: str) -> str:
    """The environment variable of a field."""
    alias = WorkerSettings.model_fields[name].validation_alias
    assert isinstance(alias, str)
    return alias


def load_settings(**overrides: Any) -> WorkerSettings:
    """The settings from the environment, `overrides` (the command line's options) on top.

    Raises `SettingsError` naming every invalid variable and what is wrong with it; the values
    themselves are never repeated, as a variable may hold a secret by mistake.
    """
    try:
        settings = WorkerSettings(**overrides)
    except ValidationError as exc:
        names = {variable(field): field for field in WorkerSettings.model_fields}
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            where = str(error["loc"][0]) if error["loc"] else "environment"
            name = where if where in names else variable(where)
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError(problems) from None
    problems = settings.security_problems()
    if problems:
        raise SettingsError(problems)
    return settings


def _shown(default: Any) -> str:
    return "none" if default is None else str(default)


def environment_help() -> str:
    """Every variable with its meaning and default, for `gateway run --help`."""
    lines = ["environment (per-sink keys: GATEWAY_KEY_<SINK>, GATEWAY_PREVIOUS_KEY_<SINK>):"]
    for name, field in WorkerSettings.model_fields.items():
        text = f"{field.description} (default {_shown(field.default)})"
        lines.append(f"  {variable(name)}")
        lines.append(
            textwrap.fill(
                text, 90, initial_indent=" " * 6, subsequent_indent=" " * 6, break_on_hyphens=False
            )
        )
    return "\n".join(lines)


def environment_rows() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) per field: the README's environment table."""
    return [
        (variable(name), _shown(field.default), field.description or "")
        for name, field in WorkerSettings.model_fields.items()
    ]
