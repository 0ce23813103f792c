"""The pure subcommands of the `gateway` command: `rules check`, `rules schema`, `explain`, `acls`.

None of them needs a broker.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.config_models import json_schemas
from gateway.consent import ConsentUpdate, parse_consent
from gateway.engine import Engine
from gateway.events import EventKind, Invalid, parse_event
from gateway.keys import Keyring, KeyringError, env_name, load_keyring
from gateway.strictjson import loads_strict

SECRET_FILE_ENV = "GATEWAY_KEYS_FILE"  # noqa: S105 - an env var name, not a secret
CONFIG_DIR_ENV = "GATEWAY_CONFIG_DIR"
SCRUB_WHY = (
    "the event's own identifier value (or an email address) was found by value and replaced by"
    " a token; no raw identifier leaves, wherever it sits (contract, Decisions)"
)


def _default_config_dir() -> Path:
    return Path(os.environ.get(CONFIG_DIR_ENV, "config"))


def _load(directory: Path) -> GatewayConfig | None:
    try:
        return load_config(directory)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return None


def rules_check(args: argparse.Namespace) -> int:
    """`gateway rules check`: validate the config, print every problem, exit 1 on failure."""
    config = _load(args.config)
    if config is None:
        return 1
    print(f"ok: {len(config.sinks)} sinks, config version {config.version}")
    return 0


def schema_files() -> dict[str, bytes]:
    """File name -> content of the JSON Schemas that `rules schema` writes."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    return {name: orjson.dumps(schema, option=option) for name, schema in json_schemas().items()}


def rules_schema(args: argparse.Namespace) -> int:
    """`gateway rules schema`: write the JSON Schemas of gateway.yaml and a sink rule file."""
    out = args.out if args.out is not None else args.config / "schema"
    out.mkdir(parents=True, exist_ok=True)
    for name, content in schema_files().items():
        (out / name).write_bytes(content)
        print(out / name)
    return 0


def _keyring(config: GatewayConfig, demo: bool) -> Keyring:
    names = [rule.name for rule in config.sinks]
    secret = os.environ.get(SECRET_FILE_ENV)
    has_keys = secret or any(env_name(name) in os.environ for name in names)
    if has_keys and not demo:
        secret_file = Path(secret) if secret else None
        return load_keyring(os.environ, names, secret_file=secret_file)
    print("note: using ephemeral demo keys; pseudonyms will differ per run", file=sys.stderr)
    return load_keyring(os.environ, names, demo=True, random_bytes=os.urandom)


def explain(args: argparse.Namespace) -> int:
    """`gateway explain`: decide one event for every sink and print the result as JSON."""
    config = _load(args.config)
    if config is None:
        return 1
    try:
        keyring = _keyring(config, args.demo_keys)
    except KeyringError as error:
        for problem in error.problems:
            print(f"key error: {problem}", file=sys.stderr)
        return 1
    raw = _read(args.event, "event")
    consent_raw = None if args.consent is None else _read(args.consent, "consent")
    if raw is None or (args.consent is not None and consent_raw is None):
        return 2
    kind = EventKind(args.topic)
    event_key = _subject_key(raw)
    event = parse_event(raw, event_key, kind, max_bytes=config.settings.max_event_bytes)
    if isinstance(event, Invalid):
        print(orjson.dumps({"invalid": event.redacted()}, option=orjson.OPT_INDENT_2).decode())
        return 2
    state = None
    if consent_raw is not None:
        update = parse_consent(consent_raw, event.subject_id.encode())
        if not isinstance(update, ConsentUpdate):
            why = (
                f"{update.reason}: {update.detail}"
                if isinstance(update, Invalid)
                else "a tombstone (erasure) leaves the subject unknown; omit --consent for that"
            )
            print(
                f"consent file is not a valid consent record for the event's subject ({why});"
                " its key is taken to be the event's subject_id",
                file=sys.stderr,
            )
            return 2
        state = update.state
    engine = Engine(config, keyring)
    result: dict[str, Any] = {}
    for decision in engine.decide(event, state):
        # The output exactly as the sink receives it: the record's own bytes, embedded as they
        # are (re-encoding would add two levels of nesting to a value at the depth limit).
        output = None if decision.value is None else orjson.Fragment(decision.value)
        shown: dict[str, Any] = {
            "verdict": decision.verdict.value,
            "reason": decision.reason.value,
            "output": output,
        }
        if decision.scrubbed:  # the contract's three keys, plus this one when it says something
            shown["scrubbed"] = [
                {"field": f, "identifier": i, "count": n, "why": SCRUB_WHY}
                for f, i, n in decision.scrubbed
            ]
        result[decision.sink] = shown
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


def _read(path: Path, what: str) -> bytes | None:
    """The bytes of an input file, or None after a one-line message when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        print(f"cannot read the {what} file {path}: {error.strerror}", file=sys.stderr)
        return None


def _subject_key(raw: bytes) -> bytes | None:
    """The Kafka key `explain` assumes, having no record: the event's own `subject_id`.

    None when the input is not strict JSON or holds no string `subject_id`.
    """
    data, reason, _ = loads_strict(raw)
    if reason is not None:
        return None
    subject = data.get("subject_id") if isinstance(data, dict) else None
    return subject.encode() if isinstance(subject, str) else None


def acls(args: argparse.Namespace) -> int:
    """`gateway acls`: print the ACLs the config's deployment needs (`gateway.acls`)."""
    from gateway.acls import derive_acls, partner_principals, render_json, render_kafka_acls

    config = _load(args.config)
    if config is None:
        return 1
    partners = partner_principals(config, args.partner_principal)
    try:
        entries = derive_acls(
            config, app_id=args.app_id, gateway_principal=args.principal,
            privacy_principal=args.privacy_principal, partners=partners,
        )  # fmt: skip
    except ValueError as error:
        print(f"gateway acls: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        shown = render_json(
            entries, gateway_principal=args.principal, partners=partners,
            privacy_principal=args.privacy_principal,
        )  # fmt: skip
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
    else:
        print(f"# ACLs for config {config.version}, app id {args.app_id}: allow only; run them")
        print("# on a cluster with allow.everyone.if.no.acl.found=false")
        print("\n".join(render_kafka_acls(entries)))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rules check`, `rules schema` and `explain` to the `gateway` command."""
    config_help = f"config directory (default ${CONFIG_DIR_ENV} or ./config)"
    rules = subparsers.add_parser("rules", help="sink rule tools")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rules_sub.add_parser("check", help="validate the config and report every problem")
    check.add_argument("--config", type=Path, default=_default_config_dir(), help=config_help)
    check.set_defaults(handler=rules_check)
    schema = rules_sub.add_parser(
        "schema", help="write the JSON Schemas of gateway.yaml and of a sink rule file"
    )
    schema.add_argument("--config", type=Path, default=_default_config_dir(), help=config_help)
    schema.add_argument("--out", type=Path, help="output directory (default: CONFIG/schema)")
    schema.set_defaults(handler=rules_schema)

    exp = subparsers.add_parser("explain", help="show what each sink gets for one event")
    exp.add_argument("--event", type=Path, required=True, help="event JSON file")
    exp.add_argument("--consent", type=Path, help="consent record JSON file (default: none)")
    exp.add_argument("--topic", choices=[k.value for k in EventKind], default="usage")
    exp.add_argument("--config", type=Path, default=_default_config_dir(), help=config_help)
    exp.add_argument("--demo-keys", action="store_true", help="use ephemeral keys even if set")
    exp.set_defaults(handler=explain)

    acl = subparsers.add_parser(
        "acls", help="print the Kafka ACLs the deployment needs (least privilege)"
    )
    acl.add_argument("--config", type=Path, default=_default_config_dir(), help=config_help)
    acl.add_argument("--format", choices=("kafka-acls", "json"), default="kafka-acls")
    acl.add_argument(
        "--app-id",
        default=os.environ.get("GATEWAY_APP_ID", "privacy-gateway"),
        help="the worker's GATEWAY_APP_ID (its groups and internal topics are named after it)",
    )
    acl.add_argument("--principal", default="User:gateway", help="the gateway's principal")
    acl.add_argument(
        "--privacy-principal",
        default="User:privacy",
        help="the privacy team's principal, for `gateway consent` and `gateway subject-report`: "
        "writes and reads the consent topic, reads the erasure topic (default User:privacy)",
    )
    acl.add_argument(
        "--partner-principal",
        default="User:{sink}",
        help="each sink's partner principal; {sink} is the sink's name (default User:{sink})",
    )
    acl.set_defaults(handler=acls)
