"""Client security: one settings model, secrets never shown, owner-only secret files."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import faust
import pytest

from devtools.certs import write_tls_files
from topologies.app import OutputProducer, Tuning, make_faust_app
from topologies.follower import FollowingConsumer
from topologies.security import PLAINTEXT, ClientSecurity, resolve_security
from topologies.settings import SettingsError, WorkerSettings, load_settings, variable

REPO = Path(__file__).resolve().parents[2]
CANARY = "canary-Pa55w0rd-7f3e"  # a test password that must never be shown


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in WorkerSettings.model_fields:
        monkeypatch.delenv(variable(name), raising=False)


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tls_files(tmp_path_factory.mktemp("tls"), ["127.0.0.1", "localhost"]).ca_cert


def owner_only(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def sasl_ssl_env(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "gateway")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", CANARY)
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(ca_file))


def test_when_nothing_is_set_then_clients_speak_plaintext() -> None:
    security = resolve_security(load_settings())
    assert security == PLAINTEXT
    assert security.aiokafka() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials() is None


def test_when_sasl_ssl_is_configured_then_aiokafka_and_faust_get_the_same_credentials(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    sasl_ssl_env(monkeypatch, ca_file)
    security = resolve_security(load_settings())
    options = security.aiokafka()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("gateway", CANARY)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.ssl_context is context


def test_when_the_password_is_set_then_no_repr_and_no_log_line_shows_it(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sasl_ssl_env(monkeypatch, ca_file)
    settings = load_settings()
    security = resolve_security(settings)
    app, _ = make_faust_app(
        "gw-test", "127.0.0.1:9092", tuning=Tuning(), partitions=1, replication=1,
        security=security,
    )  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("gateway.test").info("settings %r security %r", settings, security)
    shown = [
        repr(settings), str(settings), repr(security), str(security),
        repr(security.faust_credentials()), repr(app.conf.broker_credentials), caplog.text,
        str(settings.model_dump()),
    ]  # fmt: skip
    assert "gateway" in repr(security)
    for text in shown:
        assert CANARY not in text


def test_when_tls_is_used_then_hostname_verification_is_on_unless_turned_off(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(ca_file))
    context = resolve_security(load_settings()).ssl_context
    assert context is not None
    assert context.check_hostname is True
    monkeypatch.setenv("KAFKA_SSL_CHECK_HOSTNAME", "false")
    security = resolve_security(load_settings())
    assert security.ssl_context is not None
    assert security.ssl_context.check_hostname is False
    assert isinstance(security.faust_credentials(), faust.SSLCredentials)
    assert "sasl_mechanism" not in security.aiokafka()


def test_when_the_password_comes_from_an_owner_only_file_then_its_newline_is_dropped(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path, tmp_path: Path
) -> None:
    sasl_ssl_env(monkeypatch, ca_file)
    monkeypatch.delenv("KAFKA_SASL_PASSWORD")
    secret = owner_only(tmp_path / "password", CANARY + "\n")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    assert resolve_security(load_settings()).aiokafka()["sasl_plain_password"] == CANARY


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_when_a_password_file_is_open_to_group_or_others_then_the_start_is_refused(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path, tmp_path: Path, mode: int
) -> None:
    sasl_ssl_env(monkeypatch, ca_file)
    monkeypatch.delenv("KAFKA_SASL_PASSWORD")
    secret = owner_only(tmp_path / "password", CANARY)
    secret.chmod(mode)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    with pytest.raises(SettingsError) as caught:
        resolve_security(load_settings())
    assert caught.value.problems == [
        f"KAFKA_SASL_PASSWORD_FILE: {secret}: the secret file is accessible by group or others "
        f"(mode {mode:04o}); make it owner-only: chmod 600 {secret}"
    ]
    assert CANARY not in str(caught.value)


def test_when_secret_files_are_missing_empty_or_not_pem_then_each_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "gateway")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "absent"))
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(not_pem))
    with pytest.raises(SettingsError) as caught:
        resolve_security(load_settings())
    assert caught.value.problems[0] == (
        f"KAFKA_SASL_PASSWORD_FILE: {tmp_path / 'absent'}: cannot read secret file "
        "(No such file or directory)"
    )
    assert caught.value.problems[1].startswith(f"KAFKA_SSL_CAFILE: {not_pem}: not a usable PEM")
    owner_only(tmp_path / "empty", "\n")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(tmp_path / "no-ca.pem"))
    with pytest.raises(SettingsError) as caught:
        resolve_security(load_settings())
    assert caught.value.problems == [
        f"KAFKA_SASL_PASSWORD_FILE: {tmp_path / 'empty'}: the secret file is empty",
        f"KAFKA_SSL_CAFILE: {tmp_path / 'no-ca.pem'}: cannot read it (No such file or directory)",
    ]


def test_when_a_client_key_is_open_to_others_then_it_is_refused(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path, tmp_path: Path
) -> None:
    files = write_tls_files(tmp_path / "client", ["client.example.com"])
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(ca_file))
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", str(files.broker_pem))
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(files.broker_pem))
    assert resolve_security(load_settings()).ssl_context is not None  # owner-only: accepted
    files.broker_pem.chmod(0o644)
    with pytest.raises(SettingsError) as caught:
        resolve_security(load_settings())
    assert caught.value.problems[0].startswith("KAFKA_SSL_KEYFILE: ")
    assert "accessible by group or others (mode 0644)" in caught.value.problems[0]


def test_when_settings_contradict_each_other_then_every_problem_is_named_without_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", CANARY)
    monkeypatch.setenv("KAFKA_SSL_CAFILE", "/nowhere/ca.pem")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == [
        "KAFKA_SASL_PASSWORD: is set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use it "
        "(SASL_PLAINTEXT or SASL_SSL does)",
        "KAFKA_SSL_CAFILE: is set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use it "
        "(SASL_SSL or SSL does)",
    ]
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", "/nowhere/password")
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", "/nowhere/key.pem")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "GSSAPI")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert [p.split(":")[0] for p in caught.value.problems] == ["KAFKA_SASL_MECHANISM"]
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == [
        "KAFKA_SASL_USERNAME: is required with SASL_SSL",
        "KAFKA_SASL_PASSWORD_FILE: set either KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, "
        "not both",
        "KAFKA_SSL_KEYFILE: is set without KAFKA_SSL_CERTFILE",
    ]
    assert CANARY not in str(caught.value)


def test_when_a_client_is_made_then_it_gets_the_security_options(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    sasl_ssl_env(monkeypatch, ca_file)
    security = resolve_security(load_settings())
    made: list[dict[str, Any]] = []

    def factory(**settings: Any) -> Any:
        made.append(settings)
        raise RuntimeError("made")

    producer = OutputProducer("127.0.0.1:9092", Tuning(), {}, factory, security=security)
    with pytest.raises(RuntimeError):
        asyncio.run(producer.start())
    assert made[-1]["sasl_plain_password"] == CANARY
    assert made[-1]["ssl_context"] is security.ssl_context
    app, _ = make_faust_app(
        "gw-test", "127.0.0.1:9092", tuning=Tuning(), partitions=1, replication=1,
        security=security,
    )  # fmt: skip
    assert app.conf.broker_credentials.username == "gateway"


def test_when_the_consent_feed_and_reader_are_built_then_their_consumers_get_the_options() -> None:
    """The raw reader, the consent feed and its end-offset client pass the options through."""
    security = ClientSecurity(protocol="SSL", ssl_context=ssl.create_default_context())
    follower = FollowingConsumer("x", bootstrap_servers="b:1", **security.aiokafka())
    assert follower._settings["security_protocol"] == "SSL"
    source = {
        name: (REPO / "topologies" / name).read_text()
        for name in ("raw_reader.py", "consent_feed.py", "admin.py", "app.py", "consent_cli.py")
    }
    calls = sum(text.count("**security.aiokafka()") for text in source.values())
    assert calls == 7  # reader, feed, end-offsets, 2 admin, output producer, consent command
    assert "broker_credentials=security.faust_credentials()" in source["app.py"]


def test_when_gateway_run_gets_a_group_readable_key_file_then_it_refuses_to_start(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("ads: {id: a1, key: MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=}\n")
    keys.chmod(0o640)
    env = {"PATH": os.environ["PATH"], "GATEWAY_KEYS_FILE": str(keys)}
    result = subprocess.run(
        [sys.executable, "-m", "topologies.cli", "run"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"{keys}: the secret file is accessible by group or others (mode 0640)" in result.stderr
    assert "MTEx" not in result.stderr


def test_when_faust_names_its_internal_topics_then_they_carry_the_acls_prefix() -> None:
    """`gateway acls` grants the worker `<app id>-*` topics; faust's must fall under it."""
    from gateway.acls import internal_topic_prefix

    app, table = make_faust_app(
        "gw-x", "127.0.0.1:9092", tuning=Tuning(), partitions=1, replication=1
    )
    prefix = internal_topic_prefix("gw-x")
    assert table.changelog_topic.get_topic_name().startswith(prefix)
    assert app._leader_assignor._leader_topic_name.startswith(prefix)
