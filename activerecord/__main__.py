"""Command line: ``python -m activerecord demo [--url URL]``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m activerecord")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="walk through the batch-operations guide")
    demo.add_argument("--url", default="sqlite://", help="database URL (default: in-memory)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        run(args.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
