"""The pure part of `gateway subject-report`: reasons, pseudonyms and notices per sink."""

from __future__ import annotations

from pathlib import Path

import orjson

from gateway.consent import sticky_gpc
from gateway.engine import Engine
from gateway.erasure import ErasureReason
from gateway.keys import Keyring, pseudonymize
from gateway.records import HEADER_DEDUP_ID, Source
from gateway.subject_report import STICKY_GPC_UNKNOWN, NoticeSeen, subject_report
from tests.unit.helpers import ALL_GRANTED, consent_state
from tests.unit.test_sticky_gpc import _engine

SUBJECT = "subj-canary-1a2b3c"


def _notices(engine: Engine, subject: str) -> list[NoticeSeen]:
    erasure = engine.records.erasure(
        subject, ErasureReason.SUBJECT_ERASED, 7, Source("consent.state", 0, 3)
    )
    return [
        NoticeSeen(
            orjson.loads(o.value or b""), 0, i, 1000, dict(o.headers)[HEADER_DEDUP_ID].decode()
        )
        for i, o in enumerate(erasure.outputs)
        if o.topic == "gateway.erasure"
    ]


def test_when_a_subject_was_erased_then_each_sink_lists_its_pseudonym_and_notice(
    engine: Engine,
) -> None:
    notices = _notices(engine, SUBJECT) + _notices(engine, "someone-else")
    notices.append(NoticeSeen({"sink": "unknown", "pseudonyms": []}, 0, 99, 0, None))
    report = subject_report(engine, SUBJECT, None, notices)
    assert report["subject_id"] == SUBJECT
    assert report["consent"] == {"known": False, "version": None, "sticky_gpc": False}
    ads = report["sinks"]["ads"]
    assert ads["verdict"] == "drop" and ads["reason"] == "consent_unknown"
    key = engine.records.erasable[0].keys[0]
    assert ads["pseudonyms"] == [
        {"key_id": key.key_id, "pseudonym": pseudonymize(key.secret, SUBJECT), "current": True}
    ]
    assert [n["reason"] for n in ads["erasure_notices"]] == ["subject_erased"]
    assert ads["erasure_notices"][0]["consent_version"] == 7
    text = orjson.dumps(report).decode()
    assert text.count(SUBJECT) == 1


def test_when_consent_is_granted_then_gpc_on_an_event_would_withdraw_ads(engine: Engine) -> None:
    state = consent_state(ALL_GRANTED)
    report = subject_report(engine, SUBJECT, state, [])
    ads = report["sinks"]["ads"]
    assert (ads["verdict"], ads["reason"], ads["reason_with_gpc"]) == (
        "forward",
        "consented",
        "gpc",
    )
    assert report["consent"]["known"] is True
    assert report["sinks"]["analytics"]["erasure_notices"] == []


def test_when_gpc_is_sticky_then_the_report_says_the_kept_signal_is_unknown(
    tmp_path: Path, keyring: Keyring
) -> None:
    # The report rebuilds the state from the consent topic, which never holds the kept signal.
    sticky = _engine(tmp_path, keyring, "sticky")
    report = subject_report(sticky, SUBJECT, consent_state(ALL_GRANTED), [])
    assert report["consent"]["sticky_gpc"] is None
    assert report["consent"]["sticky_gpc_unknown"] == STICKY_GPC_UNKNOWN
    known = subject_report(sticky, SUBJECT, sticky_gpc(consent_state(ALL_GRANTED)), [],
                           sticky_gpc_known=True)  # fmt: skip
    assert known["consent"]["sticky_gpc"] is True and "sticky_gpc_unknown" not in known["consent"]


def test_when_gpc_is_per_event_then_no_signal_is_kept_and_the_report_says_false(
    engine: Engine,
) -> None:
    assert engine.config.settings.gpc == "per_event"
    report = subject_report(engine, SUBJECT, consent_state(ALL_GRANTED), [])
    assert report["consent"]["sticky_gpc"] is False
    assert "sticky_gpc_unknown" not in report["consent"]
