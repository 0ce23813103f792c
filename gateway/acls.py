"""Least privilege as data: the Kafka ACLs a deployment needs, derived from its config.

`derive_acls` takes the loaded config (topics and sinks), the worker's app id and the principals,
and returns every ACL entry (allow only; Kafka denies the rest when the cluster runs an
authorizer with `allow.everyone.if.no.acl.found=false`):

* the gateway's principal reads and describes the raw topics and the consent topic; writes and
  describes every sink topic, the audit topic, the DLQ and the erasure notice topic (no partner
  reads it: its notices name every sink's pseudonyms); may create those topics (the worker
  creates missing ones at start); owns the topics named `<app id>-...` (faust's changelog and
  assignor topics: read, write, create, describe) and reads its three consumer groups
  (`worker_groups`);
* the privacy team's principal (`gateway consent`, `gateway subject-report`) writes, reads and
  describes the consent topic and reads and describes the erasure notice topic; both commands
  read by assigning partitions, without a consumer group, so it has no group;
* each sink's partner principal reads and describes that sink's topic only, and uses the
  consumer groups named `<sink>.<anything>` (a prefix no other sink's groups share: sink names
  hold no dot);
* nobody else gets anything: no partner reads a raw, consent, audit or DLQ topic, or another
  partner's sink topic; the gateway never writes the consent topic. (The producers of raw
  events and of the consent platform's records are not derived here: their owners grant them.)

The inputs are checked first (`AclError`, every problem at once): the app id must be usable as
a topic-name prefix and a group id, every principal must be `Type:name` (`User:gateway`), and no
two roles may share a principal.

`render_json` and `render_kafka_acls` turn the entries into `gateway acls`' two output formats;
the secure local broker (`gateway local up --secure`) is set up from `render_json`'s output.
Pure: no Kafka, no I/O.
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from gateway.config import GatewayConfig
from gateway.errors import GatewayError

ResourceType = Literal["topic", "group"]
PatternType = Literal["literal", "prefixed"]
Operation = Literal["Read", "Write", "Create", "Describe"]

DEFAULT_GATEWAY_PRINCIPAL = "User:gateway"
DEFAULT_PRIVACY_PRINCIPAL = "User:privacy"  # runs `gateway consent` and `gateway subject-report`
DEFAULT_PARTNER_PRINCIPAL = "User:{sink}"  # `{sink}` is the sink's name
PARTNER_GROUP_SEPARATOR = "."  # a partner's groups are `<sink>.<anything>`
# Kafka topic names allow [A-Za-z0-9._-] up to 249 characters; faust appends table and assignor
# names to the app id, so it is kept well below that. A leading letter or digit keeps it from
# reading as a command-line option in the printed `kafka-acls.sh` lines.
_APP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,149}\Z")
_PRINCIPAL = re.compile(r"[A-Za-z][A-Za-z0-9]*:\S(.*\S)?\Z")


class AclError(GatewayError, ValueError):
    """The ACLs cannot be derived as asked; `problems` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def app_id_problem(app_id: str) -> str | None:
    """What is wrong with a `GATEWAY_APP_ID` (names its groups and topic prefix), or None."""
    if not app_id:
        return "the app id is empty (the worker's default is privacy-gateway)"
    if not _APP_ID.match(app_id):
        return (
            "the app id must be 1-150 of A-Z a-z 0-9 . _ - and start with a letter or digit"
            " (it names the worker's consumer groups and topics)"
        )
    return None


def principal_problem(principal: str) -> str | None:
    """What is wrong with a Kafka principal, or None: it must be `Type:name`, as `User:gateway`."""
    if not _PRINCIPAL.match(principal):
        return f"principal {principal!r} is not Type:name (Kafka principals look like User:gateway)"
    return None


@dataclass(frozen=True, order=True)
class AclEntry:
    """One allow rule: `principal` may do `operation` on the resource.

    `resource_type` is a topic or a consumer group; `pattern_type` says whether `name` is the
    resource's exact name (`literal`) or a prefix of the names it covers (`prefixed`).
    """

    principal: str
    resource_type: ResourceType
    pattern_type: PatternType
    name: str
    operation: Operation


class WorkerGroups(NamedTuple):
    """The consumer groups of a worker: faust's own, the raw reader's, the consent feed's."""

    faust: str
    reader: str
    consent_feed: str


def worker_groups(app_id: str) -> WorkerGroups:
    """The groups of a worker with this `GATEWAY_APP_ID` (`topologies.app` uses these names)."""
    return WorkerGroups(app_id, f"{app_id}-raw", f"{app_id}-consent-feed")


def internal_topic_prefix(app_id: str) -> str:
    """The prefix of the topics faust names after the app (changelog, assignor leader)."""
    return f"{app_id}-"


def partner_principals(config: GatewayConfig, partner_format: str) -> dict[str, str]:
    """Sink name -> its partner's principal (`partner_format` with `{sink}` replaced)."""
    return {rule.name: partner_format.replace("{sink}", rule.name) for rule in config.sinks}


def derive_acls(
    config: GatewayConfig,
    *,
    app_id: str,
    gateway_principal: str = DEFAULT_GATEWAY_PRINCIPAL,
    privacy_principal: str = DEFAULT_PRIVACY_PRINCIPAL,
    partners: Mapping[str, str] | None = None,
) -> list[AclEntry]:
    """Every ACL entry the deployment needs, sorted; nothing for anyone not named here.

    `partners` maps each sink's name to its partner's principal (default
    `partner_principals(config, DEFAULT_PARTNER_PRINCIPAL)`). Raises `AclError` (a `ValueError`)
    listing every problem: an invalid app id (`app_id_problem`), a principal that is not
    `Type:name`, a partner's principal that is the gateway's, the privacy team's or another
    sink's (it would read more than its sink), a privacy principal that is the gateway's (the
    gateway must not write consent).
    """
    if partners is None:
        partners = partner_principals(config, DEFAULT_PARTNER_PRINCIPAL)
    _check_inputs(app_id, gateway_principal, privacy_principal, partners)
    topics = config.settings.topics
    entries: set[AclEntry] = set()

    def allow(
        who: str, kind: ResourceType, names: Iterable[str], ops: Iterable[Operation],
        pattern: PatternType = "literal",
    ) -> None:  # fmt: skip
        entries.update(AclEntry(who, kind, pattern, n, op) for n in names for op in ops)

    reads = [topics.usage_raw, topics.device_raw, topics.consent]
    writes = [rule.topic for rule in config.sinks] + [topics.audit, topics.dlq, topics.erasure]
    allow(gateway_principal, "topic", reads, ("Read", "Describe", "Create"))
    allow(gateway_principal, "topic", writes, ("Write", "Describe", "Create"))
    allow(
        gateway_principal, "topic", [internal_topic_prefix(app_id)],
        ("Read", "Write", "Create", "Describe"), "prefixed",
    )  # fmt: skip
    allow(gateway_principal, "group", worker_groups(app_id), ("Read",))
    allow(privacy_principal, "topic", [topics.consent], ("Write", "Read", "Describe"))
    allow(privacy_principal, "topic", [topics.erasure], ("Read", "Describe"))
    for rule in config.sinks:
        partner = partners[rule.name]
        allow(partner, "topic", [rule.topic], ("Read", "Describe"))
        allow(partner, "group", [rule.name + PARTNER_GROUP_SEPARATOR], ("Read",), "prefixed")
    return sorted(entries)


def _check_inputs(
    app_id: str, gateway_principal: str, privacy_principal: str, partners: Mapping[str, str]
) -> None:
    problems = [
        p
        for p in [
            app_id_problem(app_id),
            principal_problem(gateway_principal),
            principal_problem(privacy_principal),
        ]
        if p
    ]
    if privacy_principal == gateway_principal:
        problems.append("the privacy team's principal is the gateway's (it must not write consent)")
    for sink, partner in sorted(partners.items()):
        problem = principal_problem(partner)
        if problem is not None:
            problems.append(f"sink '{sink}': its partner's {problem}")
        elif partner == gateway_principal:
            problems.append(f"sink '{sink}': its partner's principal is the gateway's")
        elif partner == privacy_principal:
            problems.append(f"sink '{sink}': its partner's principal is the privacy team's")
    if len(set(partners.values())) < len(partners):
        problems.append("two sinks have the same partner principal; each needs its own")
    if problems:
        raise AclError(problems)


def render_json(
    entries: Iterable[AclEntry],
    *,
    gateway_principal: str,
    partners: Mapping[str, str],
    privacy_principal: str = DEFAULT_PRIVACY_PRINCIPAL,
) -> dict[str, Any]:
    """The JSON form: the principals (gateway, privacy team, partner per sink) and every entry."""
    return {
        "principals": {
            "gateway": gateway_principal,
            "privacy": privacy_principal,
            "partners": dict(sorted(partners.items())),
        },
        "acls": [
            {
                "principal": e.principal, "permission": "ALLOW", "host": "*",
                "operation": e.operation, "resource_type": e.resource_type,
                "pattern_type": e.pattern_type, "resource_name": e.name,
            }
            for e in entries
        ],
    }  # fmt: skip


def render_kafka_acls(entries: Iterable[AclEntry]) -> list[str]:
    """`kafka-acls.sh` command lines adding the entries, one per principal and operation set.

    Each line names the cluster as `"$KAFKA_BOOTSTRAP"` and the admin client's properties as
    `"$KAFKA_ADMIN_CONFIG"`, for the shell (or the caller) to fill in.
    """
    by_resource: dict[tuple[str, ResourceType, PatternType, str], set[str]] = defaultdict(set)
    for e in entries:
        by_resource[(e.principal, e.resource_type, e.pattern_type, e.name)].add(e.operation)
    lines: dict[tuple[str, ResourceType, PatternType, tuple[str, ...]], list[str]] = {}
    for (principal, kind, pattern, name), op_set in sorted(by_resource.items()):
        lines.setdefault((principal, kind, pattern, tuple(sorted(op_set))), []).append(name)
    out = []
    for (principal, kind, pattern, ops), names in lines.items():
        words = [
            "kafka-acls.sh", "--bootstrap-server", '"$KAFKA_BOOTSTRAP"', "--command-config",
            '"$KAFKA_ADMIN_CONFIG"', "--add", "--allow-principal", shlex.quote(principal),
        ]  # fmt: skip
        words += [w for op in ops for w in ("--operation", op)]
        words += [w for name in names for w in (f"--{kind}", shlex.quote(name))]
        words += ["--resource-pattern-type", pattern]
        out.append(" ".join(words))
    return out
