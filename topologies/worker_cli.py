"""`gateway run`: the enforcement worker, its settings from the environment and the options.

Also the two helpers every broker command shares: `command_settings` (environment plus
`--config` / `--metrics-port`) and `refusing` (a `StartError` becomes its message and exit 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from topologies.settings import WorkerSettings

Handler = Callable[[argparse.Namespace], int]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `gateway run` to the `gateway` command's subcommands."""
    from topologies.settings import environment_help

    run = sub.add_parser(
        "run",
        help="run the enforcement worker",
        description="Run the enforcement worker until SIGTERM/SIGINT; SIGHUP reloads the rules. "
        "Invalid settings, config or keys: every problem listed, exit 2.",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", type=Path, help="config folder (default: GATEWAY_CONFIG_DIR)")
    run.add_argument(
        "--demo", action="store_true", help="ephemeral random keys (never in production)"
    )
    run.add_argument("--metrics-port", type=int, help="port of /metrics (GATEWAY_METRICS_PORT)")
    run.set_defaults(handler=_run)


def command_settings(args: argparse.Namespace) -> WorkerSettings:
    """The environment's settings, with the command line's --config and --metrics-port on top.

    Raises `StartError` listing every invalid variable.
    """
    from topologies.worker import load_checked_settings

    overrides: dict[str, Any] = {}
    if getattr(args, "config", None):
        overrides["config_dir"] = args.config
    if getattr(args, "metrics_port", None) is not None:
        overrides["metrics_port"] = args.metrics_port
    return load_checked_settings(**overrides)


def refusing(handler: Handler) -> Handler:
    """Invalid settings, an invalid config or missing keys end the command: problems, exit 2."""

    def guarded(args: argparse.Namespace) -> int:
        from topologies.worker import StartError

        try:
            return handler(args)
        except StartError as exc:
            print(f"gateway: refusing to start: {exc}", file=sys.stderr)
            return 2

    return guarded


@refusing
def _run(args: argparse.Namespace) -> int:
    from topologies.worker import run

    return run(command_settings(args), demo=args.demo)
