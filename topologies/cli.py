"""The `gateway` command: one entry point, subcommands registered by the module that owns them.

Pure commands (`rules check`, `explain`) come from `gateway.cli` and need no broker; `run` and
`consent` live here in `topologies`. The dev commands (`local`, `demo`, `loadgen`) come from the
`devtools` package, only where it is installed (a checkout; the image ships the runtime only).
Heavy imports (faust, aiokafka) happen inside the handlers, so `gateway rules check` starts fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrars() -> list[Registrar]:
    from gateway.cli import register as register_pure
    from topologies.consent_cli import register as register_consent
    from topologies.subject_report_cli import register as register_subject_report
    from topologies.worker_cli import register as register_worker

    registrars = [register_pure, register_worker, register_consent, register_subject_report]
    if importlib.util.find_spec("devtools") is None:
        return registrars  # the image: the runtime only
    # The one place the runtime names the dev tools, to offer their commands where installed.
    from devtools.cli import register as register_dev  # noqa: TID251

    return [*registrars, register_dev]


def build_parser() -> argparse.ArgumentParser:
    """The `gateway` parser, with the subcommands of every installed module."""
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Privacy enforcement gateway for Kafka event streams.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `gateway` command; `argv` defaults to the process's arguments.

    Returns the command's exit code (130 on Ctrl-C); argparse exits with 2 on a usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
