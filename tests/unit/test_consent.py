"""Consent records: parsing, the packed int, and last-writer-wins by updated_at."""

from __future__ import annotations

import orjson
import pytest

from gateway.consent import (
    ConsentOutcome,
    ConsentUpdate,
    Tombstone,
    apply_consent,
    consent_updated_at_us,
    parse_consent,
)
from gateway.consent_state import Tri, pack_consent, unpack_consent
from gateway.events import Invalid
from gateway.reasons import Reason


def _record(**fields: object) -> bytes:
    base: dict[str, object] = {"subject_id": "u-1", "updated_at": "2026-11-26T12:00:00Z"}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not None})


def _update(value: bytes) -> ConsentUpdate:
    update = parse_consent(value, b"u-1")
    assert isinstance(update, ConsentUpdate)
    return update


def test_when_record_is_valid_then_purposes_and_age_are_packed() -> None:
    update = _update(
        _record(
            purposes={"analytics": True, "advertising": False, "social": None},
            age={"under_13": True, "parental_consent": False},
        )
    )
    view = unpack_consent(update.state)
    assert view.purposes["analytics"] is Tri.YES
    assert view.purposes["advertising"] is Tri.NO
    assert view.purposes["social"] is Tri.UNKNOWN
    assert view.purposes["third_party_sharing"] is Tri.UNKNOWN
    assert view.under_13 is Tri.YES
    assert view.parental_consent is Tri.NO
    assert update.updated_at_us == consent_updated_at_us(update.state) == 1795694400000000
    assert "u-1" not in repr(update)


def test_when_packing_then_unpacking_round_trips() -> None:
    state = pack_consent(123, {"social": True}, None, True)
    view = unpack_consent(state)
    assert (view.updated_at_us, view.purposes["social"]) == (123, Tri.YES)
    assert (view.under_13, view.parental_consent) == (Tri.UNKNOWN, Tri.YES)
    assert isinstance(state, int)


def test_when_value_is_null_then_it_is_a_tombstone_for_the_key() -> None:
    assert parse_consent(None, b"u-1") == Tombstone("u-1")
    assert repr(Tombstone("u-1")) == "Tombstone()"


INVALID = [
    ("no key", b"{}", None, Reason.MISSING_KEY),
    ("key not utf-8", b"{}", b"\xff", Reason.INVALID_UTF8),
    ("not json", b"{", b"u-1", Reason.INVALID_JSON),
    ("not object", b"[]", b"u-1", Reason.NOT_OBJECT),
    ("too large", b" " * 70000, b"u-1", Reason.TOO_LARGE),
    ("duplicate", b'{"updated_at": 1, "updated_at": 2}', b"u-1", Reason.DUPLICATE_KEY),
    ("subject mismatch", _record(subject_id="u-2"), b"u-1", Reason.KEY_MISMATCH),
    ("no updated_at", _record(updated_at=None), b"u-1", Reason.MISSING_FIELD),
    ("updated_at number", _record(updated_at=5), b"u-1", Reason.WRONG_TYPE),
    ("updated_at bad", _record(updated_at="yesterday"), b"u-1", Reason.BAD_TIMESTAMP),
    ("purposes list", _record(purposes=[]), b"u-1", Reason.WRONG_TYPE),
    ("purpose string", _record(purposes={"analytics": "yes"}), b"u-1", Reason.WRONG_TYPE),
    ("age string", _record(age="adult"), b"u-1", Reason.WRONG_TYPE),
    ("under_13 number", _record(age={"under_13": 1}), b"u-1", Reason.WRONG_TYPE),
]


@pytest.mark.parametrize(
    ("value", "key", "reason"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_when_consent_record_is_invalid_then_reason_is_given(
    value: bytes, key: bytes | None, reason: Reason
) -> None:
    result = parse_consent(value, key)
    assert isinstance(result, Invalid)
    assert result.reason is reason
    assert result.redacted()["kind"] == "consent"


def test_when_subject_id_is_absent_then_key_is_the_subject() -> None:
    update = parse_consent(_record(subject_id=None), b"u-1")
    assert isinstance(update, ConsentUpdate)
    assert update.subject_id == "u-1"


def test_when_state_is_unknown_then_update_applies() -> None:
    update = _update(_record())
    assert apply_consent(None, update) == (update.state, ConsentOutcome.APPLIED)


def test_when_update_is_newer_then_it_replaces_the_state() -> None:
    old = _update(_record(purposes={"analytics": True}))
    new = _update(_record(updated_at="2026-11-26T12:00:01Z", purposes={"analytics": False}))
    assert apply_consent(old.state, new) == (new.state, ConsentOutcome.APPLIED)


@pytest.mark.parametrize("when", ["2026-11-26T11:59:59Z", "2026-11-26T12:00:00Z"])
def test_when_update_is_older_or_equal_then_it_is_stale_and_changes_nothing(when: str) -> None:
    current = _update(_record(purposes={"analytics": True}))
    late = _update(_record(updated_at=when, purposes={"analytics": False}))
    assert apply_consent(current.state, late) == (current.state, ConsentOutcome.STALE)


def test_when_tombstone_arrives_then_subject_is_erased() -> None:
    current = _update(_record()).state
    assert apply_consent(current, Tombstone("u-1")) == (None, ConsentOutcome.TOMBSTONE)


def test_when_updated_at_is_before_1970_then_ordering_still_holds() -> None:
    old = _update(_record(updated_at="1960-01-01T00:00:00Z", purposes={"social": True}))
    new = _update(_record(updated_at="1961-01-01T00:00:00Z"))
    assert unpack_consent(old.state).purposes["social"] is Tri.YES
    assert apply_consent(old.state, new)[1] is ConsentOutcome.APPLIED
    assert apply_consent(new.state, old)[1] is ConsentOutcome.STALE
