"""The `refinery` console command: one sub-command per job, each in the module that owns it.

Each command module exposes ``register(subparsers)``, which adds its sub-parser and sets
``func(args, settings) -> int``. Errors a user can fix surface as one line naming the bad value
and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from refinery.settings import SettingsError, load_settings

# Modules that contribute sub-commands; add one line per new command module.
COMMAND_MODULES = [
    "data_prep.simulator.command",
    "refinery.commands_data",
    "training.commands",
    "pipelines.commands",
    "scoring.commands",
    "scoring.endpoint_commands",
    "scoring.serve_command",
]


class UserError(Exception):
    """A bad input a user can fix; printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refinery", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML settings file (else REFINERY_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command module not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, lake_uri=getattr(args, "lake", None))
        return int(args.func(args, settings) or 0)
    except (UserError, SettingsError, FileNotFoundError, ValueError) as exc:
        print(f"refinery {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
