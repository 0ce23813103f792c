"""Shared fixtures: the shipped config, fixed test keys, and one engine."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gateway.config import GatewayConfig, load_config
from gateway.engine import Engine
from gateway.keys import Keyring, env_name, load_keyring

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config"


def key_env(names: list[str], prefix: str = "k1") -> dict[str, str]:
    """Fixed, distinct test keys per sink in the env format."""
    env = {}
    for index, name in enumerate(names):
        secret = base64.b64encode(bytes([index + 1]) * 32).decode()
        env[env_name(name)] = f"{prefix}-{name}:{secret}"
    return env


@pytest.fixture(scope="session")
def config() -> GatewayConfig:
    return load_config(CONFIG_DIR)


@pytest.fixture(scope="session")
def keyring(config: GatewayConfig) -> Keyring:
    names = [rule.name for rule in config.sinks]
    return load_keyring(key_env(names), names)


@pytest.fixture(scope="session")
def engine(config: GatewayConfig, keyring: Keyring) -> Engine:
    return Engine(config, keyring)
