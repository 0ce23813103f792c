"""`gateway local up|status|down`: the project's own Kafka broker on loopback."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    local = sub.add_parser("local", help="run a real single-node Kafka broker on loopback")
    actions = local.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, text in (
        ("up", _up, "assemble (first run only) and start the broker, or reuse a running one"),
        ("status", _status, "tell whether the local broker runs and where"),
        ("down", _down, "stop the local broker; no process is left behind"),
    ):
        parser = actions.add_parser(name, help=text, description=text)
        parser.set_defaults(handler=handler)


def _up(_: argparse.Namespace) -> int:
    from topologies import local_broker

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


def _status(_: argparse.Namespace) -> int:
    from topologies import local_broker

    try:
        state = local_broker.running_state()
    except local_broker.BrokerError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if state is None:
        print("not running", file=sys.stderr)
        return 3
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
    from topologies import local_broker

    state = local_broker.down()
    if state is None:
        print("no local broker was running", file=sys.stderr)
    else:
        print(f"stopped the local broker (pid {state.pid})", file=sys.stderr)
    return 0
