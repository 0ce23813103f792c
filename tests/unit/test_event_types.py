"""Event types: a free-form event_type never leaves; only allowlisted types or "other" do."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.config import ConfigError, load_config
from gateway.consent_state import ConsentState
from gateway.engine import OTHER_EVENT_TYPE, Engine
from gateway.keys import load_keyring
from gateway.reasons import Reason
from gateway.records import Source
from tests.unit.conftest import key_env
from tests.unit.helpers import ALL_GRANTED, consent_state, make_event

FREE_FORM = ["pat@example.invalid", "view_of_subj-canary-1a2b3c", "Page_View", "x" * 500, "ünï"]
SINK = """\
topic: sink.{name}
audience: internal
purposes: [analytics]
kinds: [usage]
event_types: {types}
fields:
  event_type: keep
"""


@pytest.mark.parametrize("event_type", FREE_FORM)
def test_when_event_type_is_not_allowlisted_then_outputs_and_audit_say_other(
    engine: Engine, event_type: str
) -> None:
    event = make_event(event_type=event_type)
    state = consent_state(ALL_GRANTED)
    decisions = engine.decide(event, state)
    ads, analytics, social = decisions
    assert ads.reason is Reason.EVENT_TYPE_NOT_ACCEPTED
    assert social.reason is Reason.EVENT_TYPE_NOT_ACCEPTED
    assert analytics.output is not None
    assert analytics.output["event_type"] == OTHER_EVENT_TYPE
    assert analytics.value is not None
    assert event_type.encode() not in analytics.value
    for decision in decisions:
        output = engine.records.audit(
            event, decision, Source("events.usage.raw", 0, 1), ConsentState.version(state)
        )
        record = output.value
        assert record is not None
        assert orjson.loads(record)["event_type"] == OTHER_EVENT_TYPE
        assert event_type not in record.decode()
    assert event_type not in repr(event)


def test_when_event_type_is_allowlisted_then_it_leaves_unchanged(engine: Engine) -> None:
    event = make_event(event_type="screen_view")
    ads = engine.decide(event, consent_state(ALL_GRANTED))[0]
    assert ads.output is not None
    assert ads.output["event_type"] == "screen_view"
    assert engine.event_type_label("screen_view") == "screen_view"
    assert "screen_view" in repr(event)


def _config(tmp_path: Path, settings: str, sinks: dict[str, str]) -> Path:
    root = tmp_path / "c"
    (root / "sinks").mkdir(parents=True)
    (root / "gateway.yaml").write_text(settings)
    for name, types in sinks.items():
        (root / "sinks" / f"{name}.yaml").write_text(SINK.format(name=name, types=types))
    return root


def test_when_a_sink_accepts_other_then_it_receives_unlisted_types_as_other(
    tmp_path: Path,
) -> None:
    settings = "known_event_types: [page_view, purchase]\n"
    root = _config(tmp_path, settings, {"ads": "[other]", "social": "[purchase]"})
    names = ["ads", "social"]
    engine = Engine(load_config(root), load_keyring(key_env(names), names))
    state = consent_state(ALL_GRANTED)
    other, purchase = engine.decide(make_event(event_type="checkout_of_pat"), state)
    assert other.output == {"event_type": OTHER_EVENT_TYPE}
    assert purchase.reason is Reason.EVENT_TYPE_NOT_ACCEPTED
    other, purchase = engine.decide(make_event(event_type="purchase"), state)
    assert other.reason is Reason.EVENT_TYPE_NOT_ACCEPTED
    assert purchase.output == {"event_type": "purchase"}


def test_when_a_sink_names_an_unknown_event_type_then_config_reports_file_and_line(
    tmp_path: Path,
) -> None:
    root = _config(tmp_path, "honour_dnt: false\n", {"ads": "[page_view, checkout]"})
    with pytest.raises(ConfigError) as raised:
        load_config(root)
    [problem] = raised.value.problems
    assert problem.file.endswith("ads.yaml")
    assert problem.line == 5  # the event_types line
    assert problem.path == "event_types.1"
    assert "checkout" in problem.message


@pytest.mark.parametrize("bad", ["Page_View", "pat@example.invalid", "9lives", "x" * 65])
def test_when_known_event_types_has_a_bad_shape_then_config_is_rejected(
    tmp_path: Path, bad: str
) -> None:
    root = _config(tmp_path, f"known_event_types: ['{bad}']\n", {"ads": "[other]"})
    with pytest.raises(ConfigError) as raised:
        load_config(root)
    assert [p.path for p in raised.value.problems] == ["known_event_types.0"]
