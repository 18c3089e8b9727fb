"""Command line: ``python -m activerecord demo [--url URL]`` and ``python -m activerecord load``
(see :mod:`activerecord.io.cli`)."""

from __future__ import annotations

import argparse
import sys

from .errors import ActiveRecordError
from .io import cli


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m activerecord")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="walk through the batch-operations guide")
    demo.add_argument("--url", default="sqlite://", help="database URL (default: in-memory)")
    demo.add_argument(
        "--keep", action="store_true", help="leave the demo's tables (ar_demo_*) after the run"
    )
    cli.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "demo":
        # Imported only to run it: importing the demo defines its models (User, SoftUser),
        # which would otherwise be the newest models of those names for every other command.
        from .demo import run

        try:
            run(args.url, keep=args.keep)
        except ActiveRecordError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 2
    elif args.command == "load":
        return cli.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
