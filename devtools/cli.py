"""The dev commands of `gateway`: `local up|status|down|restart`, `loadgen` and `demo`.

`topologies.cli` registers them only when this package is installed (a checkout, not the image).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError
from topologies.worker_cli import command_settings, refusing


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_local(sub)
    _register_loadgen(sub)
    demo = sub.add_parser("demo", help="local broker + gateway (--demo keys) + loadgen + live view")
    demo.add_argument("--rate", type=float, default=2000.0, help="events per second")
    demo.add_argument("--subjects", type=int, default=20_000)
    demo.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    demo.add_argument(
        "--detail", action="store_true", help="every drop reason per sink (a taller view)"
    )
    demo.set_defaults(handler=_demo)


def _register_loadgen(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    load = sub.add_parser("loadgen", help="produce synthetic usage, device and consent traffic")
    load.add_argument("--rate", type=float, default=1000.0, help="events per second (0: no limit)")
    load.add_argument("--subjects", type=int, default=10_000)
    load.add_argument("--count", type=int, help="stop after this many events")
    load.add_argument("--duration", type=float, help="stop after this many seconds")
    load.add_argument("--seed", type=int, default=7)
    load.add_argument(
        "--consent-changes", type=float, default=2.0, help="consent changes per second"
    )
    load.add_argument(
        "--no-initial-consent", action="store_true", help="skip the initial consent records"
    )
    load.add_argument(
        "--invalid-share", type=float, default=0.0, help="share of invalid records (DLQ)"
    )
    load.add_argument("--config", type=Path, help="config folder, for topic names")
    load.set_defaults(handler=_loadgen)


@refusing
def _loadgen(args: argparse.Namespace) -> int:
    from aiokafka.errors import (
        ClusterAuthorizationFailedError,
        KafkaConnectionError,
        TopicAuthorizationFailedError,
    )

    from devtools.loadgen import LoadPlan, run_load
    from topologies.worker import (
        StartError,
        load_checked_config,
        load_checked_security,
        not_authorized,
        prepare_checked_topics,
        unreachable,
    )

    settings = command_settings(args)
    config = load_checked_config(settings.config_dir)
    security = load_checked_security(settings)
    bootstrap = settings.bootstrap
    topics = config.settings.topics
    prepare_checked_topics(settings, config, security)  # refusals: one line, exit 2
    plan = LoadPlan(
        bootstrap=bootstrap, usage_topic=topics.usage_raw, device_topic=topics.device_raw,
        consent_topic=topics.consent, rate=args.rate, subjects=args.subjects, count=args.count,
        duration=args.duration, seed=args.seed, consent_changes_per_second=args.consent_changes,
        publish_consent=not args.no_initial_consent, invalid_share=args.invalid_share,
        security=security,
    )  # fmt: skip
    try:  # the topics' check above met the cluster already: a wrong password stops there
        asyncio.run(run_load(plan))
    except KafkaConnectionError as exc:
        raise StartError(unreachable(bootstrap, exc)) from None
    except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError) as exc:
        written = [topics.usage_raw, topics.device_raw, topics.consent]
        named = [arg for arg in exc.args if arg in written] or written  # aiokafka names one
        raise StartError(not_authorized(settings, "write to", named)) from None
    return 0


def _demo(args: argparse.Namespace) -> int:
    from devtools.demo import run_demo

    return run_demo(
        rate=args.rate, subjects=args.subjects, duration=args.duration, detail=args.detail
    )


def _register_local(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    local = sub.add_parser("local", help="run a real single-node Kafka broker on loopback")
    actions = local.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, text in (
        ("up", _up, "assemble (first run only) and start the broker, or reuse a running one"),
        ("status", _status, "tell whether the local broker runs and where"),
        ("down", _down, "stop the local broker; no process is left behind"),
        ("restart", _restart, "stop the running broker and start it again, keeping its data"),
    ):
        parser = actions.add_parser(name, help=text, description=text)
        parser.set_defaults(handler=handler)
        if name == "up":
            parser.add_argument(
                "--secure",
                action="store_true",
                help="a SASL_SSL broker with a throwaway CA, SCRAM users for the gateway and "
                "each sink's partner, and the ACLs of `gateway acls` (its own state and ports)",
            )
            parser.add_argument("--config", type=Path, default=Path("config"), help="for --secure")
            parser.add_argument("--app-id", default="privacy-gateway", help="for --secure")
        if name == "restart":
            parser.add_argument(
                "--down-seconds", type=float, default=0.0,
                help="how long the broker stays down before it starts again (an outage)",
            )  # fmt: skip


def _up(args: argparse.Namespace) -> int:
    from devtools import local_broker

    if args.secure:
        return _up_secure(args)
    started = time.monotonic()
    try:
        state, reused = local_broker.up()
    except local_broker.BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    how = "reused the running broker" if reused else f"started in {took:.1f}s"
    print(f"Kafka {state.kafka_version} (KRaft) {how}, pid {state.pid}", file=sys.stderr)
    print(state.bootstrap)
    return 0


def _up_secure(args: argparse.Namespace) -> int:
    from devtools import local_broker, secure_broker

    started = time.monotonic()
    try:
        broker, reused = secure_broker.up(args.config, app_id=args.app_id)
    except (local_broker.BrokerError, GatewayError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    how = "reused the running secure broker" if reused else f"started in {took:.1f}s"
    print(
        f"Kafka {broker.state.kafka_version} (KRaft, SASL_SSL, ACLs) {how}, pid "
        f"{broker.state.pid}; users and passwords in {broker.credentials_file}",
        file=sys.stderr,
    )
    print(broker.state.bootstrap)
    return 0


def _restart(args: argparse.Namespace) -> int:
    from devtools import local_broker

    try:
        state = local_broker.restart(down_seconds=args.down_seconds)
    except local_broker.BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka {state.kafka_version} (KRaft) restarted with its data, pid {state.pid}",
          file=sys.stderr)  # fmt: skip
    print(state.bootstrap)
    return 0


def _secure_status() -> bool:
    from devtools import secure_broker

    broker = secure_broker.running()
    if broker is None:
        return False
    print(f"secure listener: {broker.listener}")
    print("secure mechanism: SCRAM-SHA-512 (SCRAM-SHA-256 too)")
    print(f"secure users: {', '.join(broker.users)}")
    print(f"secure ca_file: {broker.ca_file}")
    print(f"secure credentials: {broker.credentials_file} (owner-only)")
    print(f"secure acl lines: {broker.acl_lines} (gateway acls --format kafka-acls)")
    return True


def _status(_: argparse.Namespace) -> int:
    from devtools import local_broker

    try:
        state = local_broker.running_state()
    except local_broker.BrokerError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    secure = _secure_status()
    if state is None:
        if not secure:
            print("not running", file=sys.stderr)
        return 0 if secure else 3
    info: dict[str, Any] = {
        "bootstrap": state.bootstrap,
        "pid": state.pid,
        "kafka_version": state.kafka_version,
        "state_dir": state.state_dir,
        "jars": str(local_broker.jars_dir(state.kafka_version)),
    }
    for key, value in info.items():
        print(f"{key}: {value}")
    return 0


def _down(_: argparse.Namespace) -> int:
    from devtools import local_broker, secure_broker

    secure = secure_broker.down()
    if secure is not None:
        print(f"stopped the secure local broker (pid {secure.pid})", file=sys.stderr)
    state = local_broker.down()
    if state is None:
        print("no local broker was running", file=sys.stderr)
    else:
        print(f"stopped the local broker (pid {state.pid})", file=sys.stderr)
    return 0
