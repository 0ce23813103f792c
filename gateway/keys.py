"""Pseudonym keys: one keyring entry per sink (current key + optional previous key).

Keys come from the environment or a secret file, never from the repository:

* env `GATEWAY_KEY_<SINK>` = `KEYID:BASE64KEY` and optional `GATEWAY_PREVIOUS_KEY_<SINK>`
  (SINK upper-cased, non-alphanumerics as `_`);
* or a YAML/JSON secret file mapping sink -> {id, key, previous: {id, key}} (key base64),
  refused when group or others may access it (`gateway.secret_files`, as ssh does).

Env wins over the file per sink. Output always uses the current key. "Previous accepted" means
`Keyring.recognise` also matches pseudonyms made under the previous key, so consumers can
re-key joins during a rotation. Every problem is reported at once in `KeyringError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import GatewayError
from gateway.secret_files import SecretFileError, read_secret_file

MIN_KEY_BYTES = 16
DIGEST_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}\Z")


def pseudonymize(key: bytes, value: str) -> str:
    """The keyed BLAKE2b pseudonym of `value` (32 hex chars)."""
    return hashlib.blake2b(value.encode(), key=key, digest_size=DIGEST_BYTES).hexdigest()


def keyed_pseudonymizer(key: bytes) -> Callable[[str], str]:
    """`pseudonymize` under one key, with the keyed state built once and copied per value."""
    keyed = hashlib.blake2b(key=key, digest_size=DIGEST_BYTES)

    def pseudonym(value: str) -> str:
        state = keyed.copy()
        state.update(value.encode())
        return state.hexdigest()

    return pseudonym


@dataclass(frozen=True, slots=True)
class SinkKey:
    """One key: its id and bytes (never shown in repr)."""

    key_id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SinkKeys:
    """A sink's keys: `current` makes its pseudonyms, `previous` is still recognised (rotation)."""

    current: SinkKey
    previous: SinkKey | None = None


class KeyringError(GatewayError):
    """Missing or invalid keys; `.problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Keyring:
    """The pseudonym keys of every sink."""

    sinks: Mapping[str, SinkKeys]

    def __repr__(self) -> str:
        ids = {name: keys.current.key_id for name, keys in sorted(self.sinks.items())}
        return f"Keyring(current_key_ids={ids})"

    def current(self, sink: str) -> SinkKey:
        """The key `sink`'s pseudonyms are made under; raises `KeyError` for an unknown sink."""
        return self.sinks[sink].current

    def recognise(self, sink: str, value: str, pseudonym: str) -> str | None:
        """The id of the key (current or previous) under which `value` gives `pseudonym`."""
        keys = self.sinks[sink]
        for key in (keys.current, keys.previous):
            if key is not None and pseudonymize(key.secret, value) == pseudonym:
                return key.key_id
        return None


def reused_key_ids(running: Keyring, new: Keyring) -> list[str]:
    """Key ids `new` gives other key bytes than `running` does, one problem line per sink and id.

    A key id names one key for as long as it is accepted (current or previous): outputs name
    their key by id (`gateway-key-id`), and erasure notices and `Keyring.recognise` find a
    subject's earlier records through it. New bytes under an accepted id would change every
    pseudonym while the id stays, so a reload with them must be refused. The lines name the sink
    and the id, never key material; an empty list means the new keyring is consistent.
    """
    problems = []
    for sink, keys in sorted(new.sinks.items()):
        old = running.sinks.get(sink)
        if old is None:
            continue
        accepted = {k.key_id: k.secret for k in (old.current, old.previous) if k is not None}
        for key in (keys.current, keys.previous):
            if key is not None and accepted.get(key.key_id, key.secret) != key.secret:
                problems.append(
                    f"sink '{sink}': key id '{key.key_id}' already names another key in force;"
                    " a new key needs a new id (pseudonyms would change under the same id)"
                )
    return problems


def env_name(sink: str, *, previous: bool = False) -> str:
    """The environment variable holding a sink's key."""
    suffix = re.sub(r"[^A-Za-z0-9]", "_", sink).upper()
    return f"GATEWAY_{'PREVIOUS_' if previous else ''}KEY_{suffix}"


def _decode(key_id: object, encoded: object, where: str, problems: list[str]) -> SinkKey | None:
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        problems.append(f"{where}: key id must match [A-Za-z0-9._-]{{1,32}}")
        return None
    try:
        secret = base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"{where}: key is not valid base64")
        return None
    if len(secret) < MIN_KEY_BYTES:
        problems.append(f"{where}: key must be at least {MIN_KEY_BYTES} bytes")
        return None
    return SinkKey(key_id, secret)


def _from_env(text: str, where: str, problems: list[str]) -> SinkKey | None:
    key_id, sep, encoded = text.partition(":")
    if not sep:
        problems.append(f"{where}: expected KEYID:BASE64KEY")
        return None
    return _decode(key_id, encoded, where, problems)


FILE_SHAPE = "a mapping of sink -> {id, key, previous?: {id, key}}"


def _read_secret_file(path: Path, problems: list[str]) -> dict[str, Any] | None:
    """The key file's mapping, or None after one problem line (its content never quoted)."""
    try:
        data = yaml.safe_load(read_secret_file(path).decode("utf-8"))
    except SecretFileError as error:
        problems.append(str(error))
        return None
    except UnicodeDecodeError:
        problems.append(f"{path}: the key file is not UTF-8 text; expected {FILE_SHAPE}")
        return None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problems.append(f"{path}: the key file is not valid YAML or JSON{where}; "
                        f"expected {FILE_SHAPE}")  # fmt: skip
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: must be {FILE_SHAPE}")
        return None
    return data


def _from_file(entry: object, where: str, problems: list[str]) -> SinkKeys | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a mapping with id and key")
        return None
    current = _decode(entry.get("id"), entry.get("key"), where, problems)
    previous = None
    if entry.get("previous") is not None:
        prev = entry["previous"]
        prev = prev if isinstance(prev, dict) else {}
        previous = _decode(prev.get("id"), prev.get("key"), f"{where}.previous", problems)
    return SinkKeys(current, previous) if current is not None else None


def load_keyring(
    env: Mapping[str, str],
    sink_names: Sequence[str],
    *,
    secret_file: Path | None = None,
    demo: bool = False,
    random_bytes: Callable[[int], bytes] | None = None,
) -> Keyring:
    """Keys for every sink, from env or the secret file, or ephemeral ones when `demo`."""
    problems: list[str] = []
    sinks: dict[str, SinkKeys] = {}
    if demo:
        if random_bytes is None:
            raise KeyringError(["demo keys need a random_bytes source"])
        for name in sink_names:
            secret = random_bytes(32)
            key_id = f"demo-{name}-{hashlib.blake2b(secret, digest_size=4).hexdigest()}"
            sinks[name] = SinkKeys(SinkKey(key_id, secret))
        return Keyring(sinks)
    file_data = _read_secret_file(secret_file, problems) if secret_file is not None else {}
    file_unusable = file_data is None  # its one problem says why; no "no key" line per sink
    file_data = file_data or {}
    for name in sink_names:
        variable = env_name(name)
        if variable in env:
            current = _from_env(env[variable], variable, problems)
            previous_var = env_name(name, previous=True)
            previous = None
            if previous_var in env:
                previous = _from_env(env[previous_var], previous_var, problems)
            if current is not None:
                sinks[name] = SinkKeys(current, previous)
        elif name in file_data:
            keys = _from_file(file_data[name], f"{secret_file}: {name}", problems)
            if keys is not None:
                sinks[name] = keys
        elif not file_unusable:
            problems.append(f"sink '{name}': no key (set {variable} or add it to a secret file)")
    for name, keys in sinks.items():
        previous = keys.previous
        same_id = previous is not None and previous.key_id == keys.current.key_id
        if same_id and previous is not None and previous.secret != keys.current.secret:
            problems.append(
                f"sink '{name}': the current and the previous key have the same id"
                f" '{previous.key_id}' but different keys; each key needs its own id"
            )
    if problems:
        raise KeyringError(problems)
    return Keyring(sinks)
