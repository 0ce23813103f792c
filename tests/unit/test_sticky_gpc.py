"""`gpc: sticky`: a GPC signal kept for a known subject until a later explicit grant."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from gateway.config import load_config
from gateway.consent import ConsentOutcome, ConsentUpdate, apply_consent, sticky_gpc
from gateway.consent_state import ConsentState
from gateway.engine import Engine
from gateway.keys import Keyring
from gateway.reasons import Reason
from tests.unit.conftest import CONFIG_DIR
from tests.unit.helpers import ALL_GRANTED, consent_state, make_event


def _engine(tmp_path: Path, keyring: Keyring, gpc: str) -> Engine:
    shutil.copytree(CONFIG_DIR, tmp_path / "config")
    path = tmp_path / "config" / "gateway.yaml"
    settings = yaml.safe_load(path.read_text())
    settings["gpc"] = gpc
    path.write_text(yaml.safe_dump(settings))
    return Engine(load_config(tmp_path / "config"), keyring)


def _reasons(engine: Engine, state: int | None, **event: object) -> dict[str, Reason]:
    return {d.sink: d.reason for d in engine.decide(make_event(**event), state)}


def test_when_gpc_is_sticky_then_a_kept_signal_withdraws_ads_from_later_events(
    tmp_path: Path, keyring: Keyring
) -> None:
    granted = consent_state(ALL_GRANTED)
    kept = sticky_gpc(granted)
    assert kept is not None and ConsentState.sticky_gpc(kept)
    sticky = _engine(tmp_path / "s", keyring, "sticky")
    assert _reasons(sticky, kept) == {
        "ads": Reason.GPC,
        "analytics": Reason.CONSENTED,
        "social": Reason.GPC,
    }
    assert _reasons(sticky, granted)["ads"] is Reason.CONSENTED


def test_when_gpc_is_per_event_then_a_kept_bit_is_ignored(tmp_path: Path, keyring: Keyring) -> None:
    per_event = _engine(tmp_path, keyring, "per_event")
    kept = sticky_gpc(consent_state(ALL_GRANTED))
    assert _reasons(per_event, kept)["ads"] is Reason.CONSENTED
    assert _reasons(per_event, kept, gpc=True)["ads"] is Reason.GPC


def test_sticky_gpc_changes_only_a_known_subject_without_the_bit() -> None:
    assert sticky_gpc(None) is None
    kept = sticky_gpc(consent_state(ALL_GRANTED))
    assert kept is not None
    assert sticky_gpc(kept) is None
    assert not ConsentState.sticky_gpc(None)


def test_when_later_record_grants_ads_or_sharing_then_the_kept_signal_ends() -> None:
    kept = sticky_gpc(consent_state(ALL_GRANTED, updated_at="2026-11-26T12:00:00Z"))
    assert kept is not None
    for purposes in ({"advertising": True}, {"third_party_sharing": True}):
        grant = ConsentUpdate(
            "s", consent_state(purposes, updated_at="2026-11-27T00:00:00Z"), False
        )
        new, outcome = apply_consent(kept, grant)
        assert outcome is ConsentOutcome.APPLIED and new is not None
        assert not ConsentState.sticky_gpc(new)


def test_when_later_record_grants_neither_then_the_kept_signal_is_carried_over() -> None:
    kept = sticky_gpc(consent_state(ALL_GRANTED, updated_at="2026-11-26T12:00:00Z"))
    assert kept is not None
    update = ConsentUpdate(
        "s",
        consent_state({"analytics": True, "advertising": None}, updated_at="2026-11-27T00:00:00Z"),
        False,
    )
    new, outcome = apply_consent(kept, update)
    assert outcome is ConsentOutcome.APPLIED and new is not None
    assert ConsentState.sticky_gpc(new)
    assert ConsentState.record_bits(new) == update.state
    older = ConsentUpdate("s", consent_state({"advertising": True}), False)
    same, stale = apply_consent(new, older)
    assert stale is ConsentOutcome.STALE and same == new
