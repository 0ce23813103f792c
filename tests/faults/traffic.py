"""The traffic of a fault run: subjects with canary identifiers, events, withdrawals, bad records.

Deterministic for a seed. Every subject has its own canary identifiers (subject id, cookie,
device and advertising ids, an IPv4 address in 198.18.0.0/15, the benchmarking range) and every
event plants them in free text too (the page path and query, the referrer, properties), so a
leak by value is visible. `Plan.steps` is the order of production: events, and withdrawals (a
consent record denying every purpose, published with acks=all before the events that follow).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

import orjson

from gateway.consent_state import PURPOSES
from topologies.consent_cli import consent_record

Situation = Literal["granted", "partial", "unknown", "child"]
RawTopic = Literal["usage_raw", "device_raw"]
# Kafka timestamps of the run are "now"; consent records carry dates well before the events'
# and withdrawals later ones, so the order of updated_at matches the order of production.
GRANTED_AT = "2026-01-01T00:00:00Z"
WITHDRAWN_AT = "2026-06-01T00:00:00Z"
OCCURRED_AT = "2026-11-26T12:00:00.000Z"
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


@dataclass(frozen=True)
class Subject:
    """One data subject of the run and its canary identifiers."""

    index: int
    id: str
    cookie: str
    device: str
    advertising: str
    ip: str
    situation: Situation

    def canaries(self) -> tuple[str, ...]:
        """The raw identifier values that must never appear in an output record."""
        return (self.id, self.cookie, self.device, self.advertising, self.ip)


@dataclass(frozen=True)
class Planned:
    """One raw record to produce, and what the checker must find for it."""

    topic: RawTopic
    key: bytes | None
    value: bytes | None
    event_id: str | None  # None: not a valid event (the DLQ must hold it)
    subject: int | None
    after_withdrawal: bool = False  # produced after its subject's acknowledged withdrawal
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Withdrawal:
    """A consent record denying every purpose, or a tombstone (erasure); acks=all."""

    subject: int
    value: bytes | None  # None: a tombstone, the subject's erasure


@dataclass
class Plan:
    """Subjects, their initial consent records, and the steps in production order."""

    run: str
    subjects: list[Subject]
    consents: list[tuple[bytes, bytes]]  # (key, value) of the initial grants
    steps: list[Planned | Withdrawal] = field(default_factory=list)

    @property
    def events(self) -> list[Planned]:
        return [step for step in self.steps if isinstance(step, Planned)]

    @property
    def withdrawals(self) -> list[Withdrawal]:
        return [step for step in self.steps if isinstance(step, Withdrawal)]

    def canaries(self) -> set[str]:
        return {value.lower() for subject in self.subjects for value in subject.canaries()}


def _subject(run: str, index: int, rng: random.Random) -> Subject:
    share = rng.random()
    situation: Situation = (
        "unknown" if share < 0.10 else "child" if share < 0.15 else
        "partial" if share < 0.30 else "granted"
    )  # fmt: skip
    tag = f"{run}{index:05d}"
    return Subject(
        index=index,
        id=f"fz-{tag}-subj",
        cookie=f"ck-{tag}-c00k",
        device=f"dv-{tag}-d3v1",
        advertising=f"ad-{tag}-ad1d",
        ip=f"198.{18 + index // 65536}.{index // 254 % 256}.{index % 254 + 1}",
        situation=situation,
    )


def _grant(subject: Subject, rng: random.Random) -> bytes | None:
    if subject.situation == "unknown":
        return None
    if subject.situation == "partial":
        purposes: dict[str, bool | None] = {p: rng.random() < 0.5 for p in PURPOSES}
    else:
        purposes = dict.fromkeys(PURPOSES, True)
    child = subject.situation == "child"
    return consent_record(
        subject.id, GRANTED_AT, purposes, under_13=child, parental_consent=False, source="faults"
    )


def _event(run: str, seq: int, subject: Subject, rng: random.Random, *, after: bool) -> Planned:
    event_id = f"fe-{run}-{seq:07d}"
    body: dict[str, object] = {
        "event_id": event_id,
        "subject_id": subject.id,
        "occurred_at": OCCURRED_AT,
        "ip": subject.ip,
        "cookie_id": subject.cookie,
        "user_agent": USER_AGENT,
        "device_type": "mobile",
    }
    if rng.random() < 0.2:
        body |= {
            "event_type": "device_seen",
            "device_id": subject.device,
            "advertising_id": subject.advertising,
            "app_version": "5.1.0",
            "properties": {"experiment": f"x-{subject.advertising}", "variant": subject.device},
        }
        topic: RawTopic = "device_raw"
    else:
        body |= {
            "event_type": rng.choice(("page_view", "page_view", "feature_use")),
            # the event's own identifiers planted in free text, where only the value guard can
            # find them (it knows the identifiers an event carries, not a subject's others)
            "page": f"https://www.example.com/account/{subject.id}/settings"
            f"?utm_campaign={subject.cookie}&utm_source=mail#{subject.ip}",
            "referrer": f"https://www.example.com/u/{subject.cookie}?ip={subject.ip}",
            "feature": "quote",
            "properties": {"experiment": f"hero-{subject.id}", "variant": subject.ip},
        }
        topic = "usage_raw"
    return Planned(topic, subject.id.encode(), orjson.dumps(body), event_id, subject.index, after)


def _bad(seq: int, subject: Subject, rng: random.Random) -> Planned:
    """A record the DLQ must hold: broken JSON, a missing field, or a poison pill."""
    good = _event("bad", seq, subject, rng, after=False)
    choice = rng.randrange(4)
    if choice == 0:
        value = good.value[:-5]  # truncated: not JSON
    elif choice == 1:
        value = good.value.replace(b'"occurred_at"', b'"occurred"')
    elif choice == 2:  # nested deeper than the encoder can write
        value = good.value[:-1] + b',"properties":' + b'{"a":' * 300 + b"1" + b"}" * 301
    else:  # a repeated key
        value = good.value[:-1] + b',"subject_id":"x"}'
    return Planned(good.topic, good.key, value, None, subject.index)


def make_plan(
    run: str, *, events: int, subjects: int, withdrawals: int, bad_every: int = 500,
    after_each: int = 3, seed: int = 7, corpus: bool = True,
) -> Plan:  # fmt: skip
    """The traffic of one run: `events` valid events (withdrawal follow-ups included).

    `withdrawals` granted subjects withdraw, spread evenly over the run (every other one by a
    tombstone, an erasure); each withdrawal is followed at once by `after_each` events of that
    subject, and every withdrawn subject sends one more event at the very end (after every
    fault). One record in `bad_every` is
    invalid.
    """
    rng = random.Random(seed)
    people = [_subject(run, i, rng) for i in range(subjects)]
    consents = []
    for person in people:
        record = _grant(person, rng)
        if record is not None:
            consents.append((person.id.encode(), record))
    granted = [p for p in people if p.situation == "granted"]
    chosen = rng.sample(granted, min(withdrawals, len(granted)))
    done: set[int] = set()  # subjects whose withdrawal was published
    plain = events - len(chosen) * (after_each + 1)
    every = max(1, plain // (len(chosen) + 1))
    plan = Plan(run, people, consents)
    if corpus and granted:  # the hostile records first, for a granted subject
        from tests.faults.corpus import planned

        plan.steps += planned(run, granted[0])
    seq = 0
    queue = list(chosen)
    for n in range(plain):
        person = people[rng.randrange(subjects)]
        while person.index in done:  # after its withdrawal, only the follow-ups
            person = people[rng.randrange(subjects)]
        plan.steps.append(_event(run, seq, person, rng, after=False))
        seq += 1
        if bad_every and n % bad_every == bad_every - 1:
            plan.steps.append(_bad(seq, person, rng))
            seq += 1
        if queue and (n % every == every - 1 or n == plain - 1):
            for who in queue[-1:] if n < plain - 1 else queue[::-1]:
                done.add(who.index)
                value = None if len(done) % 2 == 0 else consent_record(  # every other: erased
                    who.id, WITHDRAWN_AT, dict.fromkeys(PURPOSES, False), under_13=False,
                    parental_consent=False, source="faults",
                )  # fmt: skip
                plan.steps.append(Withdrawal(who.index, value))
                for _ in range(after_each):
                    plan.steps.append(_event(run, seq, who, rng, after=True))
                    seq += 1
            queue = queue[:-1] if n < plain - 1 else []
    # Late follow-ups, after every fault: a withdrawal lost on the way (a changelog write
    # abandoned in an outage, a stale restore after a restart) shows here as a violation.
    for who in chosen:
        plan.steps.append(_event(run, seq, who, rng, after=True))
        seq += 1
    return plan
