"""The fault suite's hostile corpus: every explicit expectation agrees with the validator."""

from __future__ import annotations

from tests.faults.corpus import MAX_EVENT_BYTES, entries, verdict
from tests.faults.traffic import make_plan

REASONS = {  # a truthful reason for each kind of hostile record
    "tombstone value": "missing_value", "truncated": "invalid_json", "array": "not_object",
    "duplicate key": "duplicate_key", "number too big": "number_out_of_range",
    "integer beyond 64 bits": "number_out_of_range", "invalid utf-8": "invalid_utf8",
    "too deep": "too_deep", "key differs from subject_id": "key_mismatch",
    "null key": "missing_key", "month 13": "bad_timestamp",
    "one byte over the size limit": "too_large",
}  # fmt: skip


def test_each_hostile_record_gets_the_verdict_and_reason_the_corpus_expects() -> None:
    plan = make_plan("cc", events=10, subjects=8, withdrawals=0, corpus=False)
    subject = next(s for s in plan.subjects if s.situation == "granted")
    seen = 0
    for name, key, value, _, expected in entries("cc", subject):
        outcome, detail = verdict(key, value)
        if expected != "parser":
            assert outcome == expected, name
        if name in REASONS:
            assert detail == REASONS[name], name
            seen += 1
        if name == "at the size limit":
            assert value is not None and len(value) == MAX_EVENT_BYTES
    assert seen == len(REASONS)


def test_the_corpus_comes_first_in_a_plan_with_its_decided_records_as_events() -> None:
    plan = make_plan("cd", events=100, subjects=20, withdrawals=2)
    first = plan.events[: len(list(entries("cd", plan.subjects[0])))]
    assert any(p.event_id is None for p in first) and any(p.event_id for p in first)
    assert any(p.headers for p in first), "the huge-headers record carries its headers"
