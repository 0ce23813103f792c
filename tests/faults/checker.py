"""The checker: every (valid event, sink) pair and every invalid record accounted for.

Pure: it reads what the run produced (the raw records' coordinates) and what the gateway wrote
(sink topics, the audit topic, the DLQ), and classifies, in the manner of Jepsen's checkers:

- a pair is **forwarded** when the sink topic holds a record with the pair's `gateway-dedup-id`,
  **dropped** when the audit topic holds a drop of it (found by the audit's `source`
  coordinates), **lost** when neither;
- a **duplicate** is a second sink record with the same dedup id (deduplicable by construction)
  or a second audit drop of one pair;
- a **conflict** is a pair both forwarded and dropped: allowed only when the consent versions
  differ and the subject withdrew in the run (a redelivery after the withdrawal), else counted;
- a **revocation violation** is a sink record of an event produced after its subject's
  acknowledged withdrawal (every purpose denied, so every sink needed it);
- a **leak** is a canary identifier, raw, anywhere in a sink, audit or DLQ record's key, value
  or headers;
- an invalid record is **lost** unless the DLQ holds it (its `gateway-source` header).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson

from tests.faults.traffic import Plan, Planned

Coordinates = tuple[str, int, int]  # topic name, partition, offset


@dataclass(frozen=True)
class Written:
    """One record the gateway wrote: key, value (None: a tombstone) and headers."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode()
        return None


@dataclass
class Report:
    """What one scenario's checker found. `ok` is true when nothing was lost or leaked."""

    scenario: str
    valid_events: int = 0
    pairs: int = 0
    forwarded: int = 0
    dropped: int = 0
    lost_pairs: int = 0
    duplicate_sink_records: int = 0
    duplicates_deduplicable: bool = True
    duplicate_audit_drops: int = 0
    conflicts: int = 0
    conflicts_after_withdrawal: int = 0
    unexplained_sink_records: int = 0
    invalid_records: int = 0
    invalid_in_dlq: int = 0
    duplicate_dlq: int = 0
    dlq_without_reason: int = 0
    lost_invalid: int = 0
    withdrawals: int = 0
    tombstones: int = 0
    events_after_withdrawal: int = 0
    revocation_violations: int = 0
    leaks: int = 0
    leak_places: dict[str, int] = field(default_factory=dict)
    joinable_values: int = 0
    crashes: int = 0  # workers found dead that no fault had killed
    strict: bool = False  # the control: no duplicate or redecision of any kind either
    faults: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost_pairs or self.lost_invalid or self.conflicts or self.unexplained_sink_records
            or self.dlq_without_reason or self.joinable_values or self.crashes
            or (self.strict and (
                self.duplicate_sink_records or self.duplicate_audit_drops
                or self.duplicate_dlq or self.conflicts_after_withdrawal
            ))
            or self.revocation_violations or self.leaks or not self.duplicates_deduplicable
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


_IPV4 = re.compile(r"(?<![\d.])198\.1[89]\.\d{1,3}\.\d{1,3}(?!\d)")


def _version(value: object) -> str:
    """A consent version as both the sink header and the audit write it ("none": none)."""
    return "none" if value is None or value in ("none", "None") else str(value)


def canary_pattern(run: str) -> re.Pattern[str]:
    """Every canary id of run `run` (lower case) as traffic.py spells them (IPs: `leaks_in`)."""
    return re.compile(rf"(?:fz|ck|dv|ad)-{re.escape(run)}\d{{5}}-(?:subj|c00k|d3v1|ad1d)")


def leaks_in(text: str, pattern: re.Pattern[str], ips: set[str]) -> int:
    """Canary ids, and canary IP addresses written out whole, in lower-cased `text`.

    Also percent-decoded: the larger count of the text as written and as decoded.
    """

    def count(text: str) -> int:
        return len(pattern.findall(text)) + sum(1 for ip in _IPV4.findall(text) if ip in ips)

    found = count(text)
    return max(found, count(unquote(text))) if "%" in text else found


def check(
    scenario: str,
    plan: Plan,
    produced: Iterable[tuple[Planned, Coordinates]],
    sinks: Mapping[str, list[Written]],
    audit: list[Written],
    dlq: list[Written],
    dedup_id: Callable[[str, str], str],
) -> Report:
    """Classify every produced record against what the gateway wrote (module docstring).

    `produced` pairs each planned raw record with where the broker put it; `dedup_id(sink,
    event_id)` computes the sink's `gateway-dedup-id`.
    """
    report = Report(scenario)
    by_source: dict[Coordinates, Planned] = {}
    events: list[Planned] = []
    events_seen: set[Planned] = set()
    for planned, where in produced:
        by_source[where] = planned
        if planned.event_id is None:
            report.invalid_records += 1
        elif planned not in events_seen:  # a record produced twice (a retried send) is one
            events_seen.add(planned)
            events.append(planned)
    report.valid_events = len(events)
    report.pairs = len(events) * len(sinks)
    report.withdrawals = len(plan.withdrawals)
    report.tombstones = sum(1 for w in plan.withdrawals if w.value is None)
    withdrew = {w.subject for w in plan.withdrawals}
    report.events_after_withdrawal = sum(1 for e in events if e.after_withdrawal)

    forwarded: dict[tuple[str, str], list[str]] = {}  # (sink, event) -> consent versions
    for sink, records in sinks.items():
        wanted = {dedup_id(sink, e.event_id): e.event_id for e in events if e.event_id}
        seen: Counter[str] = Counter()
        first: dict[str, tuple[bytes | None, bytes | None, str]] = {}
        for record in records:
            dedup = record.header("gateway-dedup-id")
            if dedup is None or dedup not in wanted:
                if record.value is not None:  # tombstones (erasure) are not forwards
                    report.unexplained_sink_records += 1
                continue
            seen[dedup] += 1
            version = _version(record.header("gateway-consent-version"))
            copy = (record.key, record.value, version)
            if first.setdefault(dedup, copy) != copy:  # a duplicate that differs
                report.duplicates_deduplicable = False
            pair = (sink, wanted[dedup])
            forwarded.setdefault(pair, []).append(version)
        report.duplicate_sink_records += sum(n - 1 for n in seen.values() if n > 1)

    dropped: dict[tuple[str, str], list[str]] = {}
    for record in audit:
        entry = orjson.loads(record.value or b"{}")
        source = entry.get("source") or {}
        where = (source.get("topic"), source.get("partition"), source.get("offset"))
        planned = by_source.get(where)
        if planned is None or planned.event_id is None or entry.get("verdict") != "drop":
            continue
        version = entry.get("consent_version")
        pair = (entry["sink"], planned.event_id)
        dropped.setdefault(pair, []).append(_version(version))
    report.duplicate_audit_drops = sum(len(v) - 1 for v in dropped.values() if len(v) > 1)

    subject_of = {e.event_id: e.subject for e in events}
    after = {e.event_id for e in events if e.after_withdrawal}
    for sink in sinks:
        for event in events:
            pair = (sink, str(event.event_id))
            fwd, drp = forwarded.get(pair), dropped.get(pair)
            if fwd:
                report.forwarded += 1
                if event.event_id in after:
                    report.revocation_violations += 1
            if drp:
                report.dropped += 1
            if not fwd and not drp:
                report.lost_pairs += 1
            if fwd and drp:
                versions_differ = not set(fwd) & set(drp)  # never both under one version
                if versions_differ and subject_of[event.event_id] in withdrew:
                    report.conflicts_after_withdrawal += 1
                else:
                    report.conflicts += 1

    in_dlq: Counter[Coordinates] = Counter()
    for record in dlq:
        source = record.header("gateway-source")
        if not record.header("gateway-reason"):
            report.dlq_without_reason += 1
        if source:
            topic, partition, offset = source.rsplit("/", 2)
            in_dlq[(topic, int(partition), int(offset))] += 1
    report.duplicate_dlq = sum(n - 1 for n in in_dlq.values() if n > 1)
    for where, planned in by_source.items():
        if planned.event_id is None:
            if where in in_dlq:
                report.invalid_in_dlq += 1
            else:
                report.lost_invalid += 1

    pattern = canary_pattern(plan.run)
    ips = {subject.ip for subject in plan.subjects}
    places: Counter[str] = Counter()
    for place, records in [*((f"sink:{s}", r) for s, r in sinks.items()), ("audit", audit),
                           ("dlq", dlq)]:  # fmt: skip
        for record in records:
            parts = [record.key or b"", record.value or b""]
            parts += [value for _, value in record.headers]
            text = b"\x00".join(parts).decode(errors="replace").lower()
            found = leaks_in(text, pattern, ips)
            if found:
                places[place] += found
    report.leaks = sum(places.values())
    report.leak_places = dict(places)
    return report


_IDENTIFIER_FIELDS = ("subject_id", "device_id", "cookie_id", "pixel_id", "advertising_id")


def joinable(sinks: Mapping[str, list[Written]]) -> int:
    """Values two sinks' records share that could join them: keys, dedup ids, pseudonyms.

    Each sink must know a subject by its own pseudonyms, and an event by its own dedup id.
    """
    seen: dict[str, set[str]] = {}
    for sink, records in sinks.items():
        values = seen.setdefault(sink, set())
        for record in records:
            if record.key:
                values.add(record.key.decode(errors="replace"))
            dedup = record.header("gateway-dedup-id")
            if dedup:
                values.add(dedup)
            if record.value:
                body = orjson.loads(record.value)
                if isinstance(body, dict):
                    values.update(str(body[f]) for f in _IDENTIFIER_FIELDS if body.get(f))
    names = sorted(seen)
    return sum(len(seen[a] & seen[b]) for i, a in enumerate(names) for b in names[i + 1 :])
