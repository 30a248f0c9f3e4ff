"""`sync-platform`: validate a configuration, run tasks, clean up after them, read their history,
open the UI. One module per command group; this one maps errors to exit codes, once:

    0  done (diff: the sides are the same)
    1  the answer is no: invalid configuration (validate), different data (diff), a run or an
       operation that failed or was refused, a failed connection test
    2  the command could not do its work: a foreseen error (bad input, unreachable database or
       store, unknown task...), as one line on stderr, never a traceback
"""

from __future__ import annotations

import argparse

from ..config import default_config_path
from ..errors import foreseen, one_line
from . import config_commands, history_commands, operation_commands, sync_commands, ui
from .render import err

COMMAND_GROUPS = (config_commands, sync_commands, operation_commands, history_commands, ui)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, help="config file (default: $SYNC_PLATFORM_CONFIG or the demo config)"
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="sync-platform", description=__doc__.split("\n\n")[0])
    sub = root.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub, _config_option)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if hasattr(args, "config"):
        args.config = args.config or str(default_config_path())
    try:
        return args.func(args)
    except Exception as error:
        if not foreseen(error):
            raise
        subject = f"{args.command} {args.task}" if getattr(args, "task", None) else args.command
        err(f"{subject}: {one_line(error)}")
        return 2


