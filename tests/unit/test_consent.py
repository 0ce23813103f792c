"""Consent records: parsing, the packed int, and last-writer-wins by updated_at."""

from __future__ import annotations

import orjson
import pytest

from gateway.consent import (
    ConsentOutcome,
    ConsentUpdate,
    Tombstone,
    apply_consent,
    parse_consent,
)
from gateway.consent_state import PURPOSES, ConsentState, Tri
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
    view = ConsentState.view(update.state)
    assert view.purposes["analytics"] is Tri.YES
    assert view.purposes["advertising"] is Tri.NO
    assert view.purposes["social"] is Tri.UNKNOWN
    assert view.purposes["third_party_sharing"] is Tri.UNKNOWN
    assert view.under_13 is Tri.YES
    assert view.parental_consent is Tri.NO
    assert update.updated_at_us == ConsentState.ordered_at_us(update.state) == 1795694400000000
    assert "u-1" not in repr(update)


def test_when_packing_then_unpacking_round_trips() -> None:
    state = ConsentState.pack(123, {"social": True}, None, True)
    view = ConsentState.view(state)
    assert (view.updated_at_us, view.purposes["social"]) == (123, Tri.YES)
    assert (view.under_13, view.parental_consent) == (Tri.UNKNOWN, Tri.YES)
    assert isinstance(state, int)


def test_when_value_is_null_then_it_is_a_tombstone_for_the_key() -> None:
    assert parse_consent(None, b"u-1") == Tombstone("u-1")
    assert repr(Tombstone("u-1")) == "Tombstone()"


INVALID = [
    ("no key", b"{}", None, Reason.MISSING_KEY),
    ("empty key", _record(subject_id=""), b"", Reason.MISSING_KEY),
    ("tombstone with an empty key", None, b"", Reason.MISSING_KEY),
    ("tombstone without a key", None, None, Reason.MISSING_KEY),
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
    value: bytes | None, key: bytes | None, reason: Reason
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
    assert ConsentState.view(old.state).purposes["social"] is Tri.YES
    assert apply_consent(old.state, new)[1] is ConsentOutcome.APPLIED
    assert apply_consent(new.state, old)[1] is ConsentOutcome.STALE


def test_when_updated_at_is_year_0001_then_state_packs_and_round_trips_the_changelog() -> None:
    update = _update(
        _record(
            updated_at="0001-01-01T00:00:00Z",
            purposes={"analytics": True, "third_party_sharing": False},
            age={"under_13": True, "parental_consent": None},
        )
    )
    assert update.updated_at_us == -62135596800000000
    restored = int(b"%d" % update.state)  # the changelog's ASCII value, read back
    assert restored == update.state
    view = ConsentState.view(restored)
    assert view.updated_at_us == -62135596800000000
    assert view.purposes["analytics"] is Tri.YES
    assert view.purposes["third_party_sharing"] is Tri.NO
    assert (view.under_13, view.parental_consent) == (Tri.YES, Tri.UNKNOWN)
    later = _update(_record(updated_at="0001-01-01T00:00:00.000001Z"))
    assert apply_consent(update.state, later)[1] is ConsentOutcome.APPLIED
    assert apply_consent(later.state, update)[1] is ConsentOutcome.STALE


# The field case: a sender's clock ten years ahead.
SKEWED_GRANT_AT = "2036-11-26T12:00:00Z"
GRANT_PRODUCED_MS = 1795694400000  # 2026-11-26T12:00:00Z, the grant's Kafka record timestamp
WITHDRAWAL_AT = "2026-11-27T09:00:00Z"
WITHDRAWAL_PRODUCED_MS = 1795770000000 + 5  # 2026-11-27T09:00:00.005Z
TOLERANCE_S = 300
EVERY_PURPOSE = PURPOSES


def _timed(value: bytes, timestamp_ms: int | None, tolerance: float = TOLERANCE_S) -> ConsentUpdate:
    update = parse_consent(
        value, b"u-1", record_timestamp_ms=timestamp_ms, clock_tolerance_seconds=tolerance
    )
    assert isinstance(update, ConsentUpdate)
    return update


def _grant(at: str = SKEWED_GRANT_AT) -> bytes:
    return _record(updated_at=at, purposes=dict.fromkeys(EVERY_PURPOSE, True))


def _withdrawal(at: str = WITHDRAWAL_AT) -> bytes:
    return _record(updated_at=at, purposes=dict.fromkeys(EVERY_PURPOSE, False))


def test_when_a_skewed_grant_is_followed_by_an_honest_withdrawal_then_the_withdrawal_applies() -> (
    None
):
    grant = _timed(_grant(), GRANT_PRODUCED_MS)
    assert grant.future_dated
    assert grant.updated_at_us == GRANT_PRODUCED_MS * 1000  # ordered at its Kafka timestamp
    state, outcome = apply_consent(None, grant)
    assert outcome is ConsentOutcome.APPLIED
    withdrawal = _timed(_withdrawal(), WITHDRAWAL_PRODUCED_MS)
    assert not withdrawal.future_dated
    state, outcome = apply_consent(state, withdrawal)
    assert outcome is ConsentOutcome.APPLIED, "a skewed clock never blocks a withdrawal"
    assert state is not None
    assert ConsentState.view(state).purposes["advertising"] is Tri.NO


def test_when_the_withdrawal_arrives_before_a_skewed_grant_then_the_grant_does_not_outrank_it() -> (
    None
):
    withdrawal = _timed(_withdrawal(), WITHDRAWAL_PRODUCED_MS)
    state, _ = apply_consent(None, withdrawal)
    grant = _timed(_grant(), GRANT_PRODUCED_MS)
    assert apply_consent(state, grant) == (state, ConsentOutcome.STALE)


def test_when_the_same_records_are_applied_again_then_each_is_stale() -> None:
    records = [
        _timed(_grant(), GRANT_PRODUCED_MS),
        _timed(_withdrawal(), WITHDRAWAL_PRODUCED_MS),
    ]
    state: int | None = None
    for update in records:
        state, _ = apply_consent(state, update)
    replayed = [_timed(_grant(), GRANT_PRODUCED_MS), _timed(_withdrawal(), WITHDRAWAL_PRODUCED_MS)]
    assert replayed == records, "parsing is deterministic: same record, same ordering time"
    for update in replayed:
        assert apply_consent(state, update) == (state, ConsentOutcome.STALE)


def test_when_a_withdrawal_is_future_dated_then_it_still_applies_at_its_kafka_timestamp() -> None:
    grant = _timed(_grant("2026-11-26T12:00:00Z"), GRANT_PRODUCED_MS)
    state, _ = apply_consent(None, grant)
    withdrawal = _timed(_withdrawal("2036-11-27T09:00:00Z"), WITHDRAWAL_PRODUCED_MS)
    assert withdrawal.future_dated
    new, outcome = apply_consent(state, withdrawal)
    assert outcome is ConsentOutcome.APPLIED
    assert new is not None and ConsentState.view(new).purposes["analytics"] is Tri.NO


def test_when_updated_at_is_exactly_at_the_tolerance_then_it_is_used_as_sent() -> None:
    at_boundary = "2026-11-26T12:05:00Z"  # the Kafka timestamp + 300 s
    update = _timed(_record(updated_at=at_boundary), GRANT_PRODUCED_MS)
    assert not update.future_dated
    assert update.updated_at_us == (GRANT_PRODUCED_MS + 300_000) * 1000
    beyond = _timed(_record(updated_at="2026-11-26T12:05:00.000001Z"), GRANT_PRODUCED_MS)
    assert beyond.future_dated
    assert beyond.updated_at_us == GRANT_PRODUCED_MS * 1000


@pytest.mark.parametrize("timestamp_ms", [None, -1])
def test_when_the_record_has_no_timestamp_then_updated_at_alone_orders_it(
    timestamp_ms: int | None,
) -> None:
    update = _timed(_grant(), timestamp_ms)
    assert not update.future_dated
    assert update == parse_consent(_grant(), b"u-1"), "callers passing neither get no clamping"
    assert update.updated_at_us == 2111313600000000  # 2036-11-26T12:00:00Z as sent


def test_when_updated_at_is_in_the_past_then_the_kafka_timestamp_changes_nothing() -> None:
    late = _timed(_withdrawal("2026-11-20T00:00:00Z"), WITHDRAWAL_PRODUCED_MS, tolerance=0)
    assert not late.future_dated
    assert late.updated_at_us == 1795132800000000


def test_when_the_layout_is_instantiated_then_it_refuses_states_are_plain_ints() -> None:
    with pytest.raises(TypeError, match="plain int"):
        ConsentState()
    assert ConsentState.version(None) is None
    assert ConsentState.version(ConsentState.pack(7, {}, None, None)) == 7
