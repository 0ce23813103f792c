"""The gateway end to end on a real broker: `gateway run` in a subprocess, the default rules."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.consent_state import PURPOSES
from gateway.keys import pseudonymize
from tests.integration.stack import SINKS, Stack, header, values

CANARIES = {
    "ip4": "192.0.2.77",
    "ip6": "2001:db8:cafe:77::77",
    "device_id": "canary-device-7f3a9c11",
    "cookie_id": "canary-cookie-5b2e8d44",
    "pixel_id": "canary-pixel-9c1d3e55",
    "advertising_id": "canary-adid-3e4f5a66",
    "email": "canary.person@example.com",
}
NOW = "2026-11-26T12:34:56.789Z"


def consent(
    subject: str,
    grants: dict[str, bool | None],
    *,
    updated_at: str = NOW,
    under_13: bool | None = False,
    parental: bool | None = False,
) -> dict[str, Any]:
    return {
        "subject_id": subject, "updated_at": updated_at, "purposes": grants,
        "age": {"under_13": under_13, "parental_consent": parental}, "source": "test",
    }  # fmt: skip


def everything(granted: bool) -> dict[str, bool | None]:
    return dict.fromkeys(PURPOSES, granted)


def usage(subject: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id, "subject_id": subject, "occurred_at": NOW, "event_type": "page_view",
        "page": f"https://www.example.com/quote?email={CANARIES['email']}&utm_source=news#top",
        "referrer": "https://search.example.com/?q=term+life", "ip": CANARIES["ip4"],
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "cookie_id": CANARIES["cookie_id"], "pixel_id": CANARIES["pixel_id"],
        "browser": "Firefox", "device_type": "desktop", "os": "Linux",
        "properties": {"experiment": "hero", "email": CANARIES["email"]},
    } | extra  # fmt: skip


def device(subject: str, event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id, "subject_id": subject, "occurred_at": NOW,
        "event_type": "device_seen",
        "ip": CANARIES["ip6"], "device_id": CANARIES["device_id"],
        "advertising_id": CANARIES["advertising_id"], "app_version": "5.2.1", "os": "Android",
    }  # fmt: skip


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    gateway = Stack(kafka_bootstrap, root, uuid.uuid4().hex[:8])
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.close()
        code = gateway.stop()
        assert code == 0, gateway.log_text()[-3000:]


async def sent_and_decided(stack: Stack, events: list[tuple[str, dict[str, Any]]]) -> None:
    before = stack.metric_sum("gateway_events_consumed_total{")
    for kind, body in events:
        await stack.event(kind, body)
    await stack.flush()
    await stack.wait_consumed(int(before) + len(events))


def forwarded_ids(stack: Stack, records: list[Any], sink: str, event_ids: list[str]) -> set[str]:
    """Which of `event_ids` reached `sink`, found by the per-sink dedup id in the headers."""
    wanted = {pseudonymize(stack.keys[sink], "event:" + e): e for e in event_ids}
    return {wanted[d] for r in records if (d := header(r, "gateway-dedup-id")) in wanted}


async def test_when_the_default_rules_run_then_each_sink_gets_exactly_what_the_policy_allows(
    stack: Stack,
) -> None:
    names = ("adult", "analytics_only", "withdrawn", "unknown", "child", "child_parent")
    subjects = {name: unique(f"subj-{name}") for name in names}
    await stack.consent(subjects["adult"], consent(subjects["adult"], everything(True)))
    await stack.consent(
        subjects["analytics_only"],
        consent(subjects["analytics_only"], everything(False) | {"analytics": True}),
    )
    await stack.consent(subjects["withdrawn"], consent(subjects["withdrawn"], everything(False)))
    await stack.consent(
        subjects["child"], consent(subjects["child"], everything(True), under_13=True)
    )
    await stack.consent(
        subjects["child_parent"],
        consent(subjects["child_parent"], everything(True), under_13=True, parental=True),
    )
    events: list[tuple[str, dict[str, Any]]] = []
    ids: dict[str, list[str]] = {}
    for name, subject in subjects.items():
        ids[name] = [unique(f"ev-{name}-u"), unique(f"ev-{name}-d")]
        events += [
            ("usage", usage(subject, ids[name][0])),
            ("device", device(subject, ids[name][1])),
        ]
    gpc_id = unique("ev-adult-gpc")
    events.append(("usage", usage(subjects["adult"], gpc_id, gpc=True)))
    await sent_and_decided(stack, events)

    out = {sink: await stack.read(sink) for sink in SINKS}
    every = [e for _, body in events for e in [body["event_id"]]]
    got = {sink: forwarded_ids(stack, out[sink], sink, every) for sink in SINKS}
    assert got["analytics"] == {
        *ids["adult"],
        gpc_id,
        *ids["analytics_only"],
        *ids["child"],
        *ids["child_parent"],
    }
    assert got["ads"] == {ids["adult"][0]}  # usage page views only; GPC withdraws advertising
    assert got["social"] == {ids["adult"][0]}  # needs social and third-party sharing; GPC withdraws

    for sink in SINKS:
        for record in out[sink]:
            assert header(record, "gateway-config-version")
            assert header(record, "gateway-key-id") in (f"test-{sink}", None)
            assert (header(record, "gateway-consent-version") or "").isdigit()
    adult_key = pseudonymize(stack.keys["analytics"], subjects["adult"]).encode()
    analytics_by_id = {
        forwarded_ids(stack, [r], "analytics", every).pop(): r
        for r in out["analytics"]
        if forwarded_ids(stack, [r], "analytics", every)
    }
    adult_page = analytics_by_id[ids["adult"][0]]
    assert adult_page.key == adult_key  # keyed by the sink's pseudonym of the subject
    body = orjson.loads(adult_page.value)
    assert body["ip"] == "192.0.2.0"
    assert "email" not in body["page"] and "utm_source=news" in body["page"]
    child_page = analytics_by_id[ids["child"][0]]
    assert child_page.key is None  # no pseudonym of a child without a parent's consent
    child_body = orjson.loads(child_page.value)
    for name in ("subject_id", "ip", "cookie_id", "device_id", "pixel_id", "advertising_id"):
        assert name not in child_body

    audit = values(await stack.read("audit"))
    ours = [a for a in audit if a.get("event_id") in set(every)]
    reasons = Counter((a["sink"], a["reason"]) for a in ours)
    assert reasons[("ads", "gpc")] == 1 and reasons[("social", "gpc")] == 1
    assert reasons[("analytics", "consent_unknown")] == 2
    assert reasons[("analytics", "consent_denied")] == 2
    assert reasons[("ads", "child_barred_sink")] + reasons[("social", "child_barred_sink")] >= 4
    # Every (event, sink) pair is accounted for exactly once: forwarded or dropped with a reason.
    forwarded = sum(len(v) for v in got.values())
    assert forwarded + len(ours) == len(every) * len(SINKS)
    assert len({(a["event_id"], a["sink"]) for a in ours}) == len(ours)


async def test_when_consent_is_withdrawn_mid_stream_then_later_events_reach_no_sink(
    stack: Stack,
) -> None:
    subject = unique("subj-withdraw")
    await stack.consent(
        subject, consent(subject, everything(True), updated_at="2026-11-26T10:00:00Z")
    )
    before = [unique("ev-before") for _ in range(5)]
    await sent_and_decided(stack, [("usage", usage(subject, e)) for e in before])
    await stack.consent(
        subject, consent(subject, everything(False), updated_at="2026-11-26T11:00:00Z")
    )
    after = [unique("ev-after") for _ in range(5)]
    await sent_and_decided(stack, [("usage", usage(subject, e)) for e in after])
    # An older record arriving late changes nothing.
    await stack.consent(
        subject, consent(subject, everything(True), updated_at="2026-11-26T09:00:00Z")
    )
    late = [unique("ev-late") for _ in range(5)]
    await sent_and_decided(stack, [("usage", usage(subject, e)) for e in late])

    analytics = forwarded_ids(
        stack, await stack.read("analytics"), "analytics", before + after + late
    )
    assert analytics == set(before)
    for sink in ("ads", "social"):
        assert not forwarded_ids(stack, await stack.read(sink), sink, after + late)


async def test_when_a_subject_is_tombstoned_then_their_consent_is_unknown(stack: Stack) -> None:
    subject = unique("subj-erase")
    await stack.consent(subject, consent(subject, everything(True)))
    kept = unique("ev-kept")
    await sent_and_decided(stack, [("usage", usage(subject, kept))])
    await stack.consent(subject, None)
    erased = unique("ev-erased")
    await sent_and_decided(stack, [("usage", usage(subject, erased))])

    assert forwarded_ids(stack, await stack.read("analytics"), "analytics", [kept, erased]) == {
        kept
    }
    audit = [a for a in values(await stack.read("audit")) if a.get("event_id") == erased]
    assert {(a["sink"], a["reason"]) for a in audit} >= {("analytics", "consent_unknown")}
    assert stack.metric_sum("gateway_consent_records_total{outcome=tombstone}") >= 1


async def test_when_consent_is_withdrawn_with_acks_all_then_no_event_produced_after_reaches_a_sink(
    stack: Stack,
) -> None:
    """The revocation barrier, over many repetitions while the gateway runs live."""
    repetitions = 300
    start = stack.metric_sum("gateway_events_consumed_total{")
    after: list[str] = []
    for i in range(repetitions):
        subject = unique(f"subj-barrier-{i}")
        await stack.consent(
            subject, consent(subject, everything(True), updated_at="2026-11-26T10:00:00Z")
        )
        await stack.event("usage", usage(subject, unique("ev-granted")))
        await stack.consent(
            subject, consent(subject, everything(False), updated_at="2026-11-26T10:00:01Z")
        )
        for _ in range(3):  # produced only after the withdrawal was acknowledged
            event_id = unique(f"ev-after-{i}")
            after.append(event_id)
            await stack.event("usage", usage(subject, event_id))
    await stack.flush()
    await stack.wait_consumed(int(start) + repetitions * 4, timeout=120)
    audit_ids: set[str] = set()
    for _ in range(60):
        audit_ids = {a.get("event_id") for a in values(await stack.read("audit", idle=0.5))}
        if set(after) <= audit_ids:
            break
    assert set(after) <= audit_ids, "every event after a withdrawal is decided (and dropped)"
    for sink in SINKS:
        leaked = forwarded_ids(stack, await stack.read(sink), sink, after)
        assert not leaked, f"{len(leaked)} events after a withdrawal reached {sink}"


INVALID: dict[str, tuple[bytes | None, bytes | None]] = {
    "invalid_json": (b"subj-x", b'{"ip": "192.0.2.77", "device_id": "canary-device-7f3a9c11", x'),
    "not_object": (b"subj-x", b'["canary-device-7f3a9c11", "192.0.2.77"]'),
    "missing_field": (b"subj-x", orjson.dumps({"event_id": "e", "subject_id": "subj-x",
                                               "ip": "192.0.2.77"})),
    "wrong_type": (b"subj-x", orjson.dumps(usage("subj-x", "e-wt") | {"event_type": 5})),
    "duplicate_key": (b"subj-x", b'{"event_id":"e","subject_id":"subj-x",'
                                 b'"occurred_at":"2026-11-26T12:00:00Z",'
                                 b'"event_type":"page_view","ip":"192.0.2.77","ip":"192.0.2.78"}'),
    "too_large": (b"subj-x", orjson.dumps(usage("subj-x", "e-big")
                                          | {"feature": "canary-device-7f3a9c11" * 3000})),
    "too_deep": (b"subj-x", b'{"event_id":"e","subject_id":"subj-x","ip":"192.0.2.77","properties":'
                            + b"[" * 1025 + b"]" * 1025 + b"}"),
    "invalid_utf8": (b"subj-x", b'{"event_id":"e\xff","subject_id":"subj-x","ip":"192.0.2.77"}'),
    "key_mismatch": (b"canary-device-7f3a9c11", orjson.dumps(usage("subj-x", "e-km"))),
    "missing_value": (b"subj-x", None),
}  # fmt: skip


async def test_when_records_are_invalid_then_each_lands_in_the_dlq_once_redacted_with_its_reason(
    stack: Stack,
) -> None:
    before = stack.metric_sum("gateway_events_consumed_total{")
    for key, value in INVALID.values():
        await stack.send_raw("usage_raw", key, value)
    await stack.flush()
    await stack.wait_consumed(int(before) + len(INVALID))
    dlq = await stack.read("dlq")
    reasons = Counter(header(r, "gateway-reason") for r in dlq)
    # This module's topics are its own: the DLQ holds exactly these records, once each.
    assert reasons == Counter(list(INVALID)), reasons
    for record in dlq:
        blob = (record.value or b"") + b"".join(v for _, v in record.headers)
        for canary in ("192.0.2.77", "canary-device-7f3a9c11", "subj-x"):
            assert canary.encode() not in blob


async def test_when_a_consent_record_is_invalid_then_it_lands_in_the_dlq_redacted(
    stack: Stack,
) -> None:
    subject = unique("subj-badconsent")
    producer = await stack.producer()
    bad = b'{"subject_id": "%s", "purposes": {"analytics": "yes"}, "ip": "192.0.2.77"' % (
        subject.encode()
    )
    await producer.send_and_wait(stack.topics["consent"], bad, key=subject.encode())
    assert await stack.wait_metric("gateway_consent_records_total{outcome=invalid}", 1) >= 1
    from_consent = [
        r for r in await stack.read("dlq")
        if (header(r, "gateway-source") or "").startswith(stack.topics["consent"] + "/")
    ]  # fmt: skip
    assert [header(r, "gateway-reason") for r in from_consent] == ["invalid_json"]
    blob = b"".join((r.value or b"") + b"".join(v for _, v in r.headers) for r in from_consent)
    assert subject.encode() not in blob and b"192.0.2.77" not in blob


async def test_when_everything_has_run_then_no_raw_identifier_is_in_any_output_or_the_log(
    stack: Stack,
) -> None:
    """The canary scan: every sink topic, the DLQ, the audit topic and the worker's log."""
    blobs: list[bytes] = []
    for name in (*SINKS, "dlq", "audit"):
        for record in await stack.read(name):
            blobs.append((record.key or b"") + (record.value or b""))
            blobs.extend(v for _, v in record.headers)
    assert len(blobs) > 100, "the other tests of this module produced outputs to scan"
    everything_out = b"\n".join(blobs) + stack.log_text().encode()
    for name, canary in CANARIES.items():
        assert canary.encode() not in everything_out, name
    subjects = [s for s in stack.log_text().split() if s.startswith("subj-")]
    assert not subjects, "subject ids must never be logged"
    assert b"subj-adult" not in b"\n".join(blobs)
