"""The policy, rule by rule, on the shipped sinks (analytics, ads, social) and on custom rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.config import GatewayConfig
from gateway.decision import DNT_BIT, GPC_BIT, PolicyRule, Verdict, policy_reason, verdict_of
from gateway.engine import Engine
from gateway.events import EventKind
from gateway.keys import Keyring
from gateway.reasons import Reason
from tests.unit.helpers import ALL_DENIED, ALL_GRANTED, consent_state, make_event

R = Reason
ADULT_ADS_ONLY = {"analytics": True, "advertising": True}
SOCIAL_ONLY = {"social": True}
CASES = [
    # (name, purposes, under_13, parental, event overrides, expected ads, analytics, social)
    ("all granted", ALL_GRANTED, False, None, {}, (R.CONSENTED, R.CONSENTED, R.CONSENTED)),
    ("unknown subject", None, None, None, {}, (R.CONSENT_UNKNOWN,) * 3),
    ("all denied", ALL_DENIED, False, None, {}, (R.CONSENT_DENIED,) * 3),
    (
        "advertising without third-party sharing",
        ADULT_ADS_ONLY,
        False,
        None,
        {},
        (R.CONSENTED_NO_IDENTIFIERS, R.CONSENTED, R.CONSENT_UNKNOWN),
    ),
    (
        "social without third-party sharing",
        SOCIAL_ONLY,
        False,
        None,
        {},
        (R.CONSENT_UNKNOWN, R.CONSENT_UNKNOWN, R.CONSENT_UNKNOWN),
    ),
    (
        "social denied third-party",
        {"social": True, "third_party_sharing": False},
        False,
        None,
        {},
        (R.CONSENT_UNKNOWN, R.CONSENT_UNKNOWN, R.CONSENT_DENIED),
    ),
    ("gpc", ALL_GRANTED, False, None, {"gpc": True}, (R.GPC, R.CONSENTED, R.GPC)),
    ("dnt not honoured", ALL_GRANTED, False, None, {"dnt": True}, (R.CONSENTED,) * 3),
    (
        "child without parental consent",
        ALL_GRANTED,
        True,
        False,
        {},
        (R.CHILD_BARRED_SINK, R.CONSENTED_CHILD_NO_IDENTIFIERS, R.CHILD_BARRED_SINK),
    ),
    (
        "child parental consent unknown",
        ALL_GRANTED,
        True,
        None,
        {},
        (R.CHILD_BARRED_SINK, R.CONSENTED_CHILD_NO_IDENTIFIERS, R.CHILD_BARRED_SINK),
    ),
    (
        "child with parental consent",
        ALL_GRANTED,
        True,
        True,
        {},
        (R.CHILD_BARRED_SINK, R.CONSENTED, R.CHILD_BARRED_SINK),
    ),
    (
        "child without analytics consent",
        {"analytics": False},
        True,
        False,
        {},
        (R.CHILD_BARRED_SINK, R.CONSENT_DENIED, R.CHILD_BARRED_SINK),
    ),
    ("unknown age is adult by default", ALL_GRANTED, None, None, {}, (R.CONSENTED,) * 3),
    (
        "event type not accepted",
        ALL_GRANTED,
        False,
        None,
        {"event_type": "app_open"},
        (R.EVENT_TYPE_NOT_ACCEPTED, R.CONSENTED, R.EVENT_TYPE_NOT_ACCEPTED),
    ),
]


@pytest.mark.parametrize(
    ("purposes", "under_13", "parental", "overrides", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_when_policy_case_then_each_sink_gets_its_one_reason(
    engine: Engine,
    purposes: dict[str, bool] | None,
    under_13: bool | None,
    parental: bool | None,
    overrides: dict[str, object],
    expected: tuple[Reason, Reason, Reason],
) -> None:
    state = (
        None if purposes is None else consent_state(purposes, under_13=under_13, parental=parental)
    )
    decisions = engine.decide(make_event(**overrides), state)
    assert [d.sink for d in decisions] == ["ads", "analytics", "social"]
    assert tuple(d.reason for d in decisions) == expected
    for decision in decisions:
        assert decision.verdict is verdict_of(decision.reason)
        assert (decision.value is not None) == (decision.verdict is Verdict.FORWARD)


def test_when_event_is_a_device_event_then_usage_only_sinks_drop_it(engine: Engine) -> None:
    event = make_event(EventKind.DEVICE, event_type="device_seen")
    reasons = [d.reason for d in engine.decide(event, consent_state(ALL_GRANTED))]
    assert reasons == [R.EVENT_KIND_NOT_ACCEPTED, R.CONSENTED, R.EVENT_KIND_NOT_ACCEPTED]


def test_when_dnt_is_honoured_then_it_withdraws_advertising_and_sharing(
    config: GatewayConfig, keyring: Keyring
) -> None:
    honouring = replace(config, settings=config.settings.model_copy(update={"honour_dnt": True}))
    engine = Engine(honouring, keyring)
    reasons = [d.reason for d in engine.decide(make_event(dnt=True), consent_state(ALL_GRANTED))]
    assert reasons == [R.DNT, R.CONSENTED, R.DNT]
    both = engine.decide(make_event(dnt=True, gpc=True), consent_state(ALL_GRANTED))
    assert [d.reason for d in both] == [R.GPC, R.CONSENTED, R.GPC]


def test_when_unknown_age_is_child_then_unknown_age_subjects_are_children(
    config: GatewayConfig, keyring: Keyring
) -> None:
    strict = replace(config, settings=config.settings.model_copy(update={"unknown_age": "child"}))
    engine = Engine(strict, keyring)
    decisions = engine.decide(make_event(), consent_state(ALL_GRANTED, under_13=None))
    assert [d.reason for d in decisions] == [
        R.CHILD_BARRED_SINK,
        R.CONSENTED_CHILD_NO_IDENTIFIERS,
        R.CHILD_BARRED_SINK,
    ]
    adult = engine.decide(make_event(), consent_state(ALL_GRANTED, under_13=False))
    assert [d.reason for d in adult] == [R.CONSENTED] * 3


def _rule(**changes: object) -> PolicyRule:
    base = PolicyRule(
        audience="internal",
        required_shifts=(0, 2),
        match_any=False,
        unknown_grants=False,
        identifier_shifts=(),
        children_strip=False,
        unknown_age_is_child=False,
        honour_dnt=False,
    )
    return replace(base, **changes)


ANALYTICS_YES, PERSONAL_YES = 0b01, 0b0100
ANALYTICS_NO, PERSONAL_NO = 0b10, 0b1000
CHILD = 1 << 10
PARENTAL = 1 << 12
THIRD_PARTY_YES = 1 << 8
POLICY_CASES = [
    ("all: both granted", {}, ANALYTICS_YES | PERSONAL_YES, R.CONSENTED),
    ("all: one unknown", {}, ANALYTICS_YES, R.CONSENT_UNKNOWN),
    ("all: one denied", {}, ANALYTICS_YES | PERSONAL_NO, R.CONSENT_DENIED),
    ("any: one granted", {"match_any": True}, ANALYTICS_NO | PERSONAL_YES, R.CONSENTED),
    ("any: none granted", {"match_any": True}, ANALYTICS_NO, R.CONSENT_DENIED),
    ("unknown grants", {"unknown_grants": True}, ANALYTICS_YES, R.CONSENTED),
    ("unknown grants, denied", {"unknown_grants": True}, PERSONAL_NO, R.CONSENT_DENIED),
    ("child dropped", {}, CHILD | ANALYTICS_YES | PERSONAL_YES, R.CHILD_NO_PARENTAL_CONSENT),
    (
        "child stripped",
        {"children_strip": True},
        CHILD | ANALYTICS_YES | PERSONAL_YES,
        R.CONSENTED_CHILD_NO_IDENTIFIERS,
    ),
    (
        "child with parent, third party",
        {"audience": "third_party"},
        CHILD | PARENTAL | ANALYTICS_YES | PERSONAL_YES,
        R.CONSENTED,
    ),
    (
        "child no parent, third party",
        {"audience": "third_party"},
        CHILD | ANALYTICS_YES | PERSONAL_YES,
        R.CHILD_BARRED_SINK,
    ),
    (
        "identifiers need third-party sharing",
        {"identifier_shifts": (8,)},
        ANALYTICS_YES | PERSONAL_YES,
        R.CONSENTED_NO_IDENTIFIERS,
    ),
    (
        "identifiers granted",
        {"identifier_shifts": (8,)},
        ANALYTICS_YES | PERSONAL_YES | THIRD_PARTY_YES,
        R.CONSENTED,
    ),
    (
        "gpc withdraws identifier purpose",
        {"identifier_shifts": (8,)},
        ANALYTICS_YES | PERSONAL_YES | THIRD_PARTY_YES | GPC_BIT,
        R.CONSENTED_NO_IDENTIFIERS,
    ),
    ("dnt ignored", {}, ANALYTICS_YES | PERSONAL_YES | DNT_BIT, R.CONSENTED),
    (
        "dnt honoured, needs advertising",
        {"honour_dnt": True, "required_shifts": (4,)},
        (1 << 4) | DNT_BIT,
        R.DNT,
    ),
]


@pytest.mark.parametrize(
    ("changes", "index", "expected"),
    [case[1:] for case in POLICY_CASES],
    ids=[case[0] for case in POLICY_CASES],
)
def test_when_policy_bits_are_given_then_policy_reason_follows_the_rule(
    changes: dict[str, object], index: int, expected: Reason
) -> None:
    assert policy_reason(_rule(**changes), index) is expected
