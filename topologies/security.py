"""The security options of every Kafka client, made once at start from `KafkaClientSettings`.

`resolve_security` reads the secret files (owner-only, like ssh's keys: `gateway.secret_files`)
and builds the TLS context once, so a missing or unreadable secret, CA file or key stops the
start with `VARIABLE: what is wrong` instead of failing on the first connection. The result,
`ClientSecurity`, gives each client construction its options in one call:
`**security.aiokafka()` for aiokafka's consumers, producers and admin client, and
`security.faust_credentials()` for faust's `broker_credentials`.

The TLS context is aiokafka's own `aiokafka.helpers.create_ssl_context` (TLS client, peer
verification required, hostname checked unless `KAFKA_SSL_CHECK_HOSTNAME=false`): the well-kept
helper, not a hand-rolled `ssl` setup. The password lives in a `SecretStr` and is shown in no
`repr`; it leaves that wrapper only inside the options handed to the client libraries.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from gateway.secret_files import SecretFileError, check_secret_file, read_secret_file
from topologies.settings import (
    SASL_PROTOCOLS,
    SSL_PROTOCOLS,
    KafkaClientSettings,
    SettingsError,
    variable,
)


@dataclass(frozen=True)
class ClientSecurity:
    """How a client authenticates and encrypts: protocol, SASL user and password, TLS context.

    `protocol` is Kafka's `security.protocol`; `mechanism` and `username` are set for SASL_*;
    `password` is a secret (not in `repr`); `ssl_context` is set for SSL and SASL_SSL.
    """

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def uses_tls(self) -> bool:
        """True for SSL and SASL_SSL."""
        return self.protocol in SSL_PROTOCOLS

    def aiokafka(self) -> dict[str, Any]:
        """Keyword options for `AIOKafkaConsumer`, `AIOKafkaProducer` and the admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.ssl_context is not None:
            options["ssl_context"] = self.ssl_context
        if self.protocol in SASL_PROTOCOLS:
            assert self.password is not None  # resolve_security guarantees it
            options["sasl_mechanism"] = self.mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password.get_secret_value()
        return options

    def faust_credentials(self) -> Any:
        """The `broker_credentials` faust takes: SASLCredentials, SSLCredentials or None."""
        import faust

        if self.protocol in SASL_PROTOCOLS:
            assert self.password is not None
            return faust.SASLCredentials(
                username=self.username,
                password=self.password.get_secret_value(),
                ssl_context=self.ssl_context,
                mechanism=self.mechanism,
            )
        if self.ssl_context is not None:
            return faust.SSLCredentials(self.ssl_context)
        return None


PLAINTEXT = ClientSecurity()


def resolve_security(settings: KafkaClientSettings) -> ClientSecurity:
    """Read the secret files and build the TLS context the settings ask for.

    Raises `SettingsError` with one `VARIABLE: message` line per problem: a secret file that is
    missing, unreadable, empty or open to group or others; a CA, certificate or key file that
    cannot be read or is not PEM; a key whose passphrase does not open it. No secret is quoted.
    """
    problems: list[str] = []
    password = None
    if settings.security_protocol in SASL_PROTOCOLS:
        password = _secret(
            settings.sasl_password, settings.sasl_password_file,
            variable("sasl_password_file"), problems,
        )  # fmt: skip
    context = None
    if settings.security_protocol in SSL_PROTOCOLS:
        context = _tls_context(settings, problems)
    if problems:
        raise SettingsError(problems)
    sasl = settings.security_protocol in SASL_PROTOCOLS
    return ClientSecurity(
        protocol=settings.security_protocol,
        mechanism=settings.sasl_mechanism if sasl else None,
        username=settings.sasl_username if sasl else None,
        password=password,
        ssl_context=context,
    )


def _secret(
    value: SecretStr | None, file: Path | None, name: str, problems: list[str]
) -> SecretStr | None:
    """The secret from the environment, or from its owner-only file `name` names.

    One trailing newline of the file is ignored (`echo secret > file` writes one).
    """
    if file is None:
        return value
    try:
        text = read_secret_file(file).decode("utf-8")
    except SecretFileError as error:
        problems.append(f"{name}: {error}")
        return None
    except UnicodeDecodeError:
        problems.append(f"{name}: {file}: the secret file is not UTF-8 text")
        return None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        problems.append(f"{name}: {file}: the secret file is empty")
        return None
    return SecretStr(text)


def _tls_context(settings: KafkaClientSettings, problems: list[str]) -> ssl.SSLContext | None:
    from aiokafka.helpers import create_ssl_context

    try:
        context: ssl.SSLContext = create_ssl_context(cafile=settings.ssl_cafile)
    except (OSError, ssl.SSLError) as error:
        problems.append(f"KAFKA_SSL_CAFILE: {settings.ssl_cafile}: {_why(error, 'CA')}")
        return None
    if settings.ssl_certfile is not None:
        key_problems = len(problems)
        if settings.ssl_keyfile is not None:
            try:
                check_secret_file(settings.ssl_keyfile)
            except SecretFileError as error:
                problems.append(f"KAFKA_SSL_KEYFILE: {error}")
        passphrase = _secret(
            settings.ssl_key_password, settings.ssl_key_password_file,
            variable("ssl_key_password_file"), problems,
        )  # fmt: skip
        if len(problems) > key_problems:
            return None
        try:
            context.load_cert_chain(
                settings.ssl_certfile,
                settings.ssl_keyfile,
                None if passphrase is None else passphrase.get_secret_value,
            )
        except (OSError, ssl.SSLError) as error:
            problems.append(
                f"KAFKA_SSL_CERTFILE: {settings.ssl_certfile}: {_why(error, 'certificate and key')}"
            )
            return None
    context.check_hostname = settings.ssl_check_hostname
    return context


def _why(error: OSError | ssl.SSLError, what: str) -> str:
    if isinstance(error, ssl.SSLError):
        return f"not a usable PEM {what} file, or a wrong key passphrase ({error.reason})"
    return f"cannot read it ({error.strerror or type(error).__name__})"
