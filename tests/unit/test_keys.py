"""Keyring: env and secret-file keys, every problem at once, demo keys, no key bytes in repr."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.keys import (
    KeyringError,
    env_name,
    keyed_pseudonymizer,
    load_keyring,
    pseudonymize,
    reused_key_ids,
)

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()


def test_when_env_has_keys_then_current_and_previous_are_loaded() -> None:
    env = {"GATEWAY_KEY_ADS": f"k2:{K2}", "GATEWAY_PREVIOUS_KEY_ADS": f"k1:{K1}"}
    ring = load_keyring(env, ["ads"])
    assert ring.current("ads").key_id == "k2"
    old = pseudonymize(b"1" * 32, "u-1")
    assert ring.recognise("ads", "u-1", old) == "k1"
    assert ring.recognise("ads", "u-1", pseudonymize(b"2" * 32, "u-1")) == "k2"
    assert ring.recognise("ads", "u-1", "0" * 32) is None
    assert K2 not in repr(ring)
    assert "2222" not in repr(ring)
    assert "k2" in repr(ring)


def test_when_secret_file_has_keys_then_they_are_used(tmp_path: Path) -> None:
    secret = tmp_path / "keys.json"
    secret.write_text(
        json.dumps(
            {
                "ads": {"id": "a1", "key": K1, "previous": {"id": "a0", "key": K2}},
                "social": {"id": "s1", "key": K2},
            }
        )
    )
    secret.chmod(0o600)
    ring = load_keyring({"GATEWAY_KEY_SOCIAL": f"env:{K1}"}, ["ads", "social"], secret_file=secret)
    assert ring.current("ads").key_id == "a1"
    assert ring.sinks["ads"].previous is not None
    assert ring.current("social").key_id == "env"


def test_when_keys_are_missing_or_invalid_then_every_problem_is_listed(tmp_path: Path) -> None:
    secret = tmp_path / "keys.yaml"
    secret.write_text(
        f"f1: {{id: 'bad id!', key: x}}\nf2: nope\nf3: {{id: ok, key: '{K1}', previous: 3}}\n"
    )
    env = {
        "GATEWAY_KEY_A": "nocolon",
        "GATEWAY_KEY_B": "b1:!!!",
        "GATEWAY_KEY_C": "c1:" + base64.b64encode(b"short").decode(),
        "GATEWAY_KEY_D": f"d1:{K1}",
        "GATEWAY_PREVIOUS_KEY_D": "oops",
    }
    secret.chmod(0o600)
    names = ["a", "b", "c", "d", "e", "f1", "f2", "f3"]
    with pytest.raises(KeyringError) as caught:
        load_keyring(env, names, secret_file=secret)
    text = "\n".join(caught.value.problems)
    assert "GATEWAY_KEY_A: expected KEYID:BASE64KEY" in text
    assert "GATEWAY_KEY_B: key is not valid base64" in text
    assert "GATEWAY_KEY_C: key must be at least 16 bytes" in text
    assert "GATEWAY_PREVIOUS_KEY_D: expected" in text
    assert "sink 'e': no key (set GATEWAY_KEY_E" in text
    assert "f1: key id must match" in text
    assert "f2: must be a mapping" in text
    assert "f3.previous: key id must match" in text
    assert len(caught.value.problems) == 8


def test_when_secret_file_is_unreadable_or_not_a_mapping_then_it_is_reported(
    tmp_path: Path,
) -> None:
    with pytest.raises(KeyringError, match="cannot read secret file"):
        load_keyring({}, [], secret_file=tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    (tmp_path / "list.yaml").chmod(0o600)
    with pytest.raises(KeyringError, match="must be a mapping"):
        load_keyring({}, [], secret_file=tmp_path / "list.yaml")


def test_when_secret_file_is_open_to_group_or_others_then_it_is_refused_like_ssh_does(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "keys.yaml"
    secret.write_text(f"ads: {{id: a1, key: '{K1}'}}\n")
    secret.chmod(0o644)
    with pytest.raises(KeyringError) as caught:
        load_keyring({}, ["ads"], secret_file=secret)
    assert caught.value.problems[0] == (
        f"{secret}: the secret file is accessible by group or others (mode 0644); "
        f"make it owner-only: chmod 600 {secret}"
    )
    assert K1 not in str(caught.value)
    secret.chmod(0o400)
    assert load_keyring({}, ["ads"], secret_file=secret).current("ads").key_id == "a1"


def test_when_demo_then_ephemeral_keys_come_from_the_given_source() -> None:
    ring = load_keyring({}, ["ads", "social"], demo=True, random_bytes=lambda n: b"\x07" * n)
    assert ring.current("ads").key_id.startswith("demo-ads-")
    assert ring.current("ads").secret == b"\x07" * 32
    with pytest.raises(KeyringError, match="random_bytes"):
        load_keyring({}, ["ads"], demo=True)


def test_when_sink_name_has_symbols_then_env_name_is_upper_snake() -> None:
    assert env_name("my-sink") == "GATEWAY_KEY_MY_SINK"
    assert env_name("x", previous=True) == "GATEWAY_PREVIOUS_KEY_X"


@given(
    st.binary(min_size=16, max_size=64),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
)
def test_when_keyed_state_is_reused_then_pseudonym_equals_one_shot_pseudonym(
    key: bytes, value: str
) -> None:
    pseudonym = keyed_pseudonymizer(key)
    assert pseudonym(value) == pseudonymize(key, value)
    assert pseudonym(value) == pseudonymize(key, value)  # the keyed state is not consumed


def test_when_a_key_id_in_force_names_other_bytes_then_reused_key_ids_names_sink_and_id() -> None:
    running = load_keyring({"GATEWAY_KEY_ADS": f"k2:{K2}", "GATEWAY_PREVIOUS_KEY_ADS": f"k1:{K1}"},
                           ["ads"])  # fmt: skip
    k9 = base64.b64encode(b"9" * 32).decode()
    rotated = load_keyring({"GATEWAY_KEY_ADS": f"k3:{k9}", "GATEWAY_PREVIOUS_KEY_ADS": f"k2:{K2}"},
                           ["ads"])  # fmt: skip
    assert reused_key_ids(running, rotated) == []
    assert reused_key_ids(running, running) == []
    reusing = [
        {"GATEWAY_KEY_ADS": f"k2:{k9}"},  # the current id, new bytes
        {"GATEWAY_KEY_ADS": f"k1:{k9}"},  # the previous id promoted, new bytes
        {"GATEWAY_KEY_ADS": f"k3:{k9}", "GATEWAY_PREVIOUS_KEY_ADS": f"k1:{k9}"},
    ]
    for env in reusing:
        problems = reused_key_ids(running, load_keyring(env, ["ads"]))
        assert len(problems) == 1
        assert problems[0].startswith("sink 'ads': key id 'k")
        assert k9 not in problems[0] and K1 not in problems[0] and K2 not in problems[0]


def test_when_current_and_previous_share_an_id_with_other_bytes_then_the_keyring_is_refused() -> (
    None
):
    env = {"GATEWAY_KEY_ADS": f"k1:{K2}", "GATEWAY_PREVIOUS_KEY_ADS": f"k1:{K1}"}
    with pytest.raises(KeyringError) as caught:
        load_keyring(env, ["ads"])
    assert caught.value.problems == [
        "sink 'ads': the current and the previous key have the same id 'k1' but different keys;"
        " each key needs its own id"
    ]


@pytest.mark.parametrize("damage", ["missing", "group readable", "not yaml", "not a mapping"])
def test_when_the_key_file_is_unusable_then_only_its_cause_is_reported(
    tmp_path: Path, damage: str
) -> None:
    secret = tmp_path / "keys.yaml"
    if damage != "missing":
        text = {
            "group readable": f"ads: {{id: a1, key: '{K1}'}}\n",
            "not yaml": '{"ads": {"id": "a1", "key": ',  # a JSON file cut short
            "not a mapping": "- ads\n",
        }[damage]
        secret.write_text(text)
        secret.chmod(0o640 if damage == "group readable" else 0o600)
    with pytest.raises(KeyringError) as caught:
        load_keyring({}, ["ads", "analytics", "social"], secret_file=secret)
    problems = caught.value.problems
    assert len(problems) == 1, problems  # no "sink 'X': no key" lines after the real cause
    assert problems[0].startswith(f"{secret}: ")
    expected = {
        "missing": "cannot read secret file (No such file or directory)",
        "group readable": "accessible by group or others",
        "not yaml": "the key file is not valid YAML or JSON (line 1); expected a mapping of "
        "sink -> {id, key, previous?: {id, key}}",
        "not a mapping": "must be a mapping of sink -> {id, key, previous?: {id, key}}",
    }[damage]
    assert expected in problems[0]
    assert "ParserError" not in problems[0]
