"""Config reload on SIGHUP: new sink rules take effect between two batches, without a restart.

A reload is all or nothing. The new config must be valid and keep the same topics and sink names
(sinks and topics need topics created and keys loaded: that is a restart); otherwise the running
config stays, the problems are logged with file and line, and the failure is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.engine import Engine
from gateway.keys import Keyring
from gateway.metrics import GatewayMetrics

log = logging.getLogger("gateway.reload")

Swap = Callable[[Engine], None]  # hands the new engine (its config, its records) to every writer


def _shape(config: GatewayConfig) -> tuple[object, ...]:
    topics = config.settings.topics
    return (
        topics.usage_raw, topics.device_raw, topics.consent, topics.dlq, topics.audit,
        tuple((rule.name, rule.topic) for rule in config.sinks),
    )  # fmt: skip


class ConfigReloader:
    """Owns the running config and its reload from `directory` (on SIGHUP).

    `running` is the config in force at start; `keyring` builds each new engine (keys are not
    reloaded); `metrics` counts every reload's result and the loaded version; `swap` hands a
    new engine to every writer. `reload` raises nothing for an invalid config or one whose
    topics or sink names changed: it logs each problem and returns False.
    """

    def __init__(
        self,
        directory: Path,
        running: GatewayConfig,
        keyring: Keyring,
        metrics: GatewayMetrics,
        swap: Swap,
    ) -> None:
        self._directory = directory
        self._running = running
        self._keyring = keyring
        self._metrics = metrics
        self._swap = swap

    @property
    def version(self) -> str:
        """The running config's content version."""
        return self._running.version

    def reload(self) -> bool:
        """Load, check and apply the config folder; True when the new rules are in force."""
        try:
            config = load_config(self._directory)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload rejected: %s", problem)
            self._metrics.config_reload("failure")
            return False
        if _shape(config) != _shape(self._running):
            log.error(
                "config reload rejected: topics or sink names changed; restart the worker for that"
            )
            self._metrics.config_reload("failure")
            return False
        if config.version == self._running.version:
            log.info("config reload: version %s unchanged", config.version)
            self._metrics.config_reload("success")
            return True
        self._swap(Engine(config, self._keyring))
        log.info("config reloaded: version %s -> %s", self._running.version, config.version)
        self._running = config
        self._metrics.config_loaded(config.version)
        self._metrics.config_reload("success")
        return True
