"""Reload on SIGHUP: new sink rules and pseudonym keys take effect between two batches.

A reload is all or nothing. The new config must be valid and keep the same topics and sink names
(sinks and topics need topics created: that is a restart), and the keys (`load_keys`: the
environment and the re-read `GATEWAY_KEYS_FILE`, owner-only) must be complete and valid and
give no key id in force (current or previous) other key bytes (`gateway.keys.reused_key_ids`);
otherwise the running config and keys stay, the problems are logged (file and line for the
config; the variable or file and what is wrong for keys, never a key), and the failure is
counted in `gateway_config_reloads_total{result="failure"}`. New keys reach every writer with
the new engine, so outputs name the new key id from the first batch after the reload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.engine import Engine
from gateway.keys import Keyring, KeyringError, reused_key_ids
from gateway.metrics import GatewayMetrics

log = logging.getLogger("gateway.reload")

Swap = Callable[[Engine], None]  # hands the new engine (its config, its records) to every writer
LoadKeys = Callable[[Sequence[str]], Keyring]  # sink names -> their keys; raises KeyringError


def _shape(config: GatewayConfig) -> tuple[object, ...]:
    # Every field of the Topics model, not a hand-kept list: a topic left out here could change
    # under a running worker that never created it or holds no partition count for it.
    topics = config.settings.topics
    return (
        tuple((name, getattr(topics, name)) for name in type(topics).model_fields),
        tuple((rule.name, rule.topic) for rule in config.sinks),
    )


def _key_ids(keyring: Keyring) -> str:
    return ", ".join(
        f"{sink}={keys.current.key_id}" for sink, keys in sorted(keyring.sinks.items())
    )


class ConfigReloader:
    """Owns the running config and its reload from `directory` (on SIGHUP).

    `running` is the config in force at start and `keyring` its keys; `load_keys` reloads the
    keys (None: they never change, as with demo keys); `metrics` counts every reload's result
    and the loaded version; `swap` hands a new engine to every writer. `reload` raises nothing
    for an invalid config, one whose topics or sink names changed, or invalid keys: it logs
    each problem and returns False.
    """

    def __init__(
        self,
        directory: Path,
        running: GatewayConfig,
        keyring: Keyring,
        metrics: GatewayMetrics,
        swap: Swap,
        *,
        load_keys: LoadKeys | None = None,
    ) -> None:
        self._load_keys = load_keys
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
        keyring = self._keyring
        if self._load_keys is not None:
            try:
                keyring = self._load_keys([rule.name for rule in config.sinks])
            except KeyringError as exc:
                for key_problem in exc.problems:
                    log.error("reload rejected, the keys in force stay: %s", key_problem)
                self._metrics.config_reload("failure")
                return False
            reused = reused_key_ids(self._keyring, keyring)
            if reused:
                for key_problem in reused:
                    log.error("reload rejected, the keys in force stay: %s", key_problem)
                self._metrics.config_reload("failure")
                return False
        if config.version == self._running.version and keyring == self._keyring:
            log.info("config reload: version %s and keys unchanged", config.version)
            self._metrics.config_reload("success")
            return True
        self._swap(Engine(config, keyring))
        if keyring != self._keyring:
            log.info("pseudonym keys reloaded: current key ids %s", _key_ids(keyring))
        log.info("config reloaded: version %s -> %s", self._running.version, config.version)
        self._running, self._keyring = config, keyring
        self._metrics.config_loaded(config.version)
        self._metrics.config_reload("success")
        return True
