"""The fault suite's checker finds what it must: lost pairs, leaks, revocation, the DLQ."""

from __future__ import annotations

import orjson

from gateway.keys import pseudonymize
from tests.faults.checker import Coordinates, Written, check, joinable
from tests.faults.traffic import Plan, Planned, make_plan

KEYS = {"analytics": b"a" * 32, "ads": b"b" * 32}
Produced = list[tuple[Planned, Coordinates]]


def dedup_id(sink: str, event_id: str) -> str:
    return pseudonymize(KEYS[sink], "event:" + event_id)


def small() -> tuple[Plan, Produced]:
    plan = make_plan(
        "t0", events=40, subjects=10, withdrawals=2, bad_every=10, after_each=2, corpus=False
    )
    produced = [(p, (p.topic, 0, offset)) for offset, p in enumerate(plan.events)]
    return plan, produced


def forward(sink: str, event: Planned, value: bytes = b"{}", version: str = "1") -> Written:
    headers = (
        ("gateway-dedup-id", dedup_id(sink, str(event.event_id)).encode()),
        ("gateway-consent-version", version.encode()),
    )
    return Written(b"k", value, headers)


def drop(sink: str, where: Coordinates, version: int | None = 1) -> Written:
    source = {"topic": where[0], "partition": where[1], "offset": where[2]}
    body = {"sink": sink, "verdict": "drop", "source": source, "consent_version": version}
    return Written(None, orjson.dumps(body), ())


def in_dlq(where: Coordinates, reason: bytes = b"invalid_json") -> Written:
    source = f"{where[0]}/{where[1]}/{where[2]}".encode()
    return Written(None, b"{}", (("gateway-source", source), ("gateway-reason", reason)))


def everything_accounted(
    produced: Produced,
) -> tuple[dict[str, list[Written]], list[Written], list[Written]]:
    sinks: dict[str, list[Written]] = {"analytics": [], "ads": []}
    audit, dlq = [], []
    for planned, where in produced:
        if planned.event_id is None:
            dlq.append(in_dlq(where))
        elif planned.after_withdrawal:
            audit += [drop("analytics", where), drop("ads", where)]
        else:
            sinks["analytics"].append(forward("analytics", planned))
            audit.append(drop("ads", where))
    return sinks, audit, dlq


def test_a_complete_run_is_ok_and_counts_every_pair() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    report = check("t", plan, produced, sinks, audit, dlq, dedup_id)
    assert report.ok, report
    assert report.pairs == 2 * report.valid_events == 80
    assert report.forwarded + report.dropped == report.pairs
    assert report.invalid_records == report.invalid_in_dlq == 3
    assert report.events_after_withdrawal == 2 * 2 + 2  # two right after each, one at the end


def test_a_missing_output_is_a_lost_pair_and_a_missing_dlq_record_a_lost_invalid() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    sinks["analytics"].pop()
    audit.pop(0)
    dlq.pop()
    report = check("t", plan, produced, sinks, audit, dlq, dedup_id)
    assert (report.lost_pairs, report.lost_invalid, report.ok) == (2, 1, False)


def test_a_dlq_record_twice_is_a_duplicate_and_one_without_a_reason_is_a_defect() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    where = next(w for p, w in produced if p.event_id is None)
    report = check("t", plan, produced, sinks, audit, [*dlq, in_dlq(where)], dedup_id)
    assert report.duplicate_dlq == 1 and report.ok
    bare = Written(None, b"{}", (("gateway-source", f"{where[0]}/0/{where[2]}".encode()),))
    report = check("t", plan, produced, sinks, audit, [*dlq, bare], dedup_id)
    assert report.dlq_without_reason == 1 and not report.ok


def test_duplicates_are_counted_and_a_forward_after_withdrawal_is_a_violation() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    sinks["analytics"].append(sinks["analytics"][0])
    audit.append(audit[0])
    after = next(p for p, _ in produced if p.after_withdrawal)
    sinks["ads"].append(forward("ads", after))
    report = check("t", plan, produced, sinks, audit, dlq, dedup_id)
    assert report.duplicate_sink_records == 1 and report.duplicate_audit_drops == 1
    assert report.revocation_violations == 1 and not report.ok


def test_forwarded_and_dropped_under_one_consent_version_is_a_conflict() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    where = next(w for p, w in produced if p.event_id and not p.after_withdrawal)
    audit.append(drop("analytics", where, version=1))
    report = check("t", plan, produced, sinks, audit, dlq, dedup_id)
    assert report.conflicts == 1 and not report.ok


def test_a_canary_anywhere_in_an_output_is_a_leak_but_a_truncated_ip_is_not() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    person = plan.subjects[3]
    truncated = person.ip.rsplit(".", 1)[0] + ".0"
    first = sinks["analytics"][0]
    sinks["analytics"][0] = Written(b"k", f'{{"ip":"{truncated}"}}'.encode(), first.headers)
    assert check("t", plan, produced, sinks, audit, dlq, dedup_id).ok
    encoded = person.cookie.replace("-", "%2D")
    for leaked in (person.id.upper(), person.ip, person.cookie, encoded):
        record = Written(None, b"{}", (("x", leaked.encode()),))
        report = check("t", plan, produced, sinks, [*audit, record], dlq, dedup_id)
        assert report.leaks == 1 and report.leak_places == {"audit": 1}, leaked


def test_a_key_or_pseudonym_two_sinks_share_makes_their_records_joinable() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    first = sinks["analytics"][0]
    shared = Written(b"same-pseudonym", b'{"subject_id":"p1"}', first.headers)
    sinks["analytics"][0] = shared
    sinks["ads"].append(Written(b"other", b'{"subject_id":"p1"}', ()))
    report = check("t", plan, produced, sinks, audit, dlq, dedup_id)
    assert report.joinable_values == 0, "the checker itself does not look; joinable() does"
    assert joinable(sinks) == 1


def test_duplicates_that_differ_are_not_deduplicable_and_one_shared_version_is_a_conflict() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    first = sinks["analytics"][0]
    sinks["analytics"].append(Written(first.key, b'{"other":1}', first.headers))
    report = check("t", plan, produced, sinks, audit, dlq, dedup_id)
    assert not report.duplicates_deduplicable and not report.ok
    sinks, audit, dlq = everything_accounted(produced)
    withdrawn = {w.subject for w in plan.withdrawals}
    event, where = next(
        (p, w)
        for p, w in produced
        if p.subject in withdrawn and p.event_id and not p.after_withdrawal
    )
    audit += [drop("analytics", where, version=1), drop("analytics", where, version=2)]
    sinks["analytics"].append(forward("analytics", event, version="1"))
    report = check("t", plan, produced, sinks, audit, dlq, dedup_id)
    assert report.conflicts >= 1, "a forward and a drop under version 1: not a redecision"


def test_no_consent_is_one_version_in_sink_headers_and_audit_records() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    where = next(w for p, w in produced if p.event_id and not p.after_withdrawal)
    event = next(p for p, w in produced if w == where)
    sinks["ads"].append(forward("ads", event, version="none"))
    audit.append(drop("ads", where, version=None))
    report = check("t", plan, produced, sinks, audit, dlq, dedup_id)
    assert report.conflicts >= 1


def test_the_control_scenario_allows_no_duplicate() -> None:
    plan, produced = small()
    sinks, audit, dlq = everything_accounted(produced)
    sinks["analytics"].append(sinks["analytics"][0])
    report = check("t", plan, produced, sinks, audit, dlq, dedup_id)
    assert report.ok
    report.strict = True
    assert not report.ok
