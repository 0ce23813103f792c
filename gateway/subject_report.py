"""`gateway subject-report`, the pure part: what each sink may get of one subject, and by what name.

For a privacy team answering a data-subject request (privacy policy section 5; children:
section 7). Given the subject's state as the gateway's consent table holds it and the erasure
notices read from the erasure topic, `subject_report` says per sink: whether the current consent
lets events through and why (reason codes, gateway.decision; with and without a GPC signal on
the event), the pseudonyms the sink knows the subject by under each accepted key (current first;
none for a sink whose rule never carries one), and the notices published for it. The raw id
appears only as `subject_id`, the asked id echoed back. Nothing here reads Kafka or a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from gateway.consent_state import ConsentState
from gateway.decision import verdict_of
from gateway.engine import Engine

__all__ = ["STICKY_GPC_UNKNOWN", "NoticeSeen", "subject_report"]

# Why `sticky_gpc` is null: the signal is kept in the worker's table and changelog, never on
# the consent topic the report reads (README, "GPC").
STICKY_GPC_UNKNOWN = (
    "gpc is sticky, and a kept GPC signal lives only in the worker's consent table, not on the"
    " consent topic read here: if the worker holds one, sinks get reason_with_gpc"
)


class NoticeSeen(NamedTuple):
    """One record read from the erasure topic: its parsed value, position, time and dedup id.

    `value` is the notice as `OutputRecords.erasure` writes it; `timestamp_ms` is the Kafka
    record timestamp (epoch ms).
    """

    value: dict[str, Any]
    partition: int
    offset: int
    timestamp_ms: int
    dedup_id: str | None


def subject_report(
    engine: Engine,
    subject_id: str,
    state: int | None,
    notices: Iterable[NoticeSeen],
    *,
    sticky_gpc_known: bool = False,
) -> dict[str, Any]:
    """The report of one subject, as a JSON-ready dict (module docstring).

    `state` is the subject's packed consent (None: unknown, never seen or erased);
    `sticky_gpc_known` says whether it holds the worker's sticky GPC signal (a state rebuilt
    from the consent topic does not); `notices` every erasure notice read (those naming none of
    the subject's pseudonyms are left out). With `gpc: sticky` and the signal not known,
    `sticky_gpc` is null and `sticky_gpc_unknown` says why (`STICKY_GPC_UNKNOWN`); with
    `gpc: per_event` no signal is kept, so it is false. Shape: `{"subject_id", "consent":
    {"known", "version", "sticky_gpc", ["sticky_gpc_unknown"]},
    "sinks": {sink: {"verdict", "reason", "reason_with_gpc", "pseudonyms": [{"key_id",
    "pseudonym", "current"}], "erasure_notices": [{"reason", "consent_version",
    "config_version", "key_ids", "dedup_id", "partition", "offset", "timestamp_ms"}]}}}`.
    """
    reasons = engine.consent_reasons(state)
    with_gpc = engine.consent_reasons(state, gpc=True)
    names = {sink.name: sink.pseudonyms(subject_id) for sink in engine.records.erasable}
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in reasons}
    for notice in notices:
        sink = notice.value.get("sink")
        known = {pseudonym for _, pseudonym in names.get(str(sink), ())}
        given = {p.get("pseudonym") for p in notice.value.get("pseudonyms", [])}
        if sink in seen and known & given:
            seen[sink].append(
                {
                    "reason": notice.value.get("reason"),
                    "consent_version": notice.value.get("consent_version"),
                    "config_version": notice.value.get("config_version"),
                    "key_ids": [p.get("key_id") for p in notice.value.get("pseudonyms", [])],
                    "dedup_id": notice.dedup_id,
                    "partition": notice.partition,
                    "offset": notice.offset,
                    "timestamp_ms": notice.timestamp_ms,
                }
            )
    sinks = {
        name: {
            "verdict": verdict_of(reason).value,
            "reason": reason.value,
            "reason_with_gpc": with_gpc[name].value,
            "pseudonyms": [
                {"key_id": key_id, "pseudonym": pseudonym, "current": index == 0}
                for index, (key_id, pseudonym) in enumerate(names.get(name, ()))
            ],
            "erasure_notices": seen[name],
        }
        for name, reason in reasons.items()
    }
    consent: dict[str, Any] = {
        "known": state is not None,
        "version": ConsentState.version(state),
        "sticky_gpc": ConsentState.sticky_gpc(state),
    }
    if engine.config.settings.gpc == "sticky" and not sticky_gpc_known:
        consent["sticky_gpc"] = None
        consent["sticky_gpc_unknown"] = STICKY_GPC_UNKNOWN
    return {"subject_id": subject_id, "consent": consent, "sinks": sinks}
