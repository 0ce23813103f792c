"""The root of every exception the gateway raises on purpose, and the tree below it.

    GatewayError                      anything the gateway refuses, by design
    ├── ConfigError                   gateway.config: the config folder is invalid (`.problems`:
    │                                 every problem as FILE:LINE: PATH: MESSAGE)
    ├── KeyringError                  gateway.keys: missing or invalid pseudonym keys (`.problems`)
    ├── SecretFileError               gateway.secret_files: a secret file is missing, unreadable
    │                                 or open to group or others (never its content)
    ├── UnknownLabelValueError        gateway.metrics: a label value not declared at construction
    │                                 (also a ValueError; the value is never shown)
    ├── SettingsError                 topologies.settings: invalid GATEWAY_* environment
    │                                 (`.problems`; also a ValueError)
    ├── StartError                    topologies.worker: the worker refuses to start (topics not
    │                                 co-partitioned, keys missing outside demo mode, ...)
    ├── RefusalError                  topologies.consent_cli: `gateway consent` publishes nothing
    └── ClusterUnreachableError       topologies.consent_cli: no bootstrap server answered

The dev tools (devtools/) raise `BrokerError` (the local broker) and `ChildError` (a child
process) under the same root. Anything else
that escapes is a bug: the hot path turns it into an `internal_error` DLQ record for the one
record that caused it (README, "One record costs itself only").
"""

from __future__ import annotations

__all__ = ["GatewayError"]


class GatewayError(Exception):
    """Base of every exception the gateway raises on purpose; catch it to handle them all."""
