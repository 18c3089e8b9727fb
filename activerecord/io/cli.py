"""``python -m activerecord load FILE --url URL --table NAME``: load a file from a script.

Loads a CSV (or JSON Lines: ``.jsonl``/``.ndjson``, or ``--format jsonl``; ``.gz`` is
decompressed) into an existing table, reflected and validated through a model built on it,
or into a model class (``--model package.module:Class``). One transaction: all or nothing.

Exit codes: 0 loaded; 1 the data was refused (validation, malformed line, constraint: the
message names the line); 2 usage or configuration (arguments, URL, server unreachable, login
refused, missing database, table or file), told in one line. On success one line goes to
stdout (with ``--upsert``, what became of the rows)::

    loaded 500 rows into people in 0.21 s (2380 rows/s)
    loaded 500 rows into people in 0.30 s (1667 rows/s): 20 inserted, 30 updated, 450 unchanged

An empty CSV cell is a missing value (NULL in a nullable column), as with ``load_csv``;
``--empty keep`` keeps it as ``""`` in text columns.

Example::

    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="python -m activerecord")
    >>> add_parser(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["load", "a.csv", "--url", "sqlite://", "--table", "t"]).batch_size
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from typing import Any

from ..backend.database import connect, disconnect
from ..errors import (
    ActiveRecordError,
    ConfigurationError,
    DatabaseConnectionError,
    QueryError,
    SchemaError,
)
from ..model import ActiveRecord
from ..optional import available
from .files import EMPTY, load_source, read_csv, read_jsonl
from .reflect import model_for_table
from .upsert import check_upsert_key

__all__ = ["add_parser", "run"]

_DATABASE = "activerecord-load"
_JSONL = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")


def add_parser(commands: Any) -> None:
    """Add the ``load`` subcommand to an argparse subparsers object."""
    load = commands.add_parser(
        "load",
        help="load a CSV or JSON Lines file into a table",
        description="Load a CSV or JSON Lines file into a table, in one transaction. "
        "Exit codes: 0 loaded, 1 data refused, 2 usage or configuration error.",
    )
    load.add_argument("file", help="the file (.csv, .tsv, .jsonl, .ndjson; optionally .gz)")
    load.add_argument(
        "--url", required=True,
        help="database URL: postgresql+psycopg://..., mysql+pymysql://..., sqlite:///file.db",
    )
    target = load.add_mutually_exclusive_group(required=True)
    target.add_argument("--table", help="an existing table")
    target.add_argument("--model", help="a model class, as package.module:Class")
    load.add_argument("--format", choices=("csv", "jsonl"), help="default: by file name")
    load.add_argument("--delimiter", help="CSV field delimiter (default: ',' or tab for .tsv)")
    load.add_argument(
        "--empty", choices=EMPTY, default=EMPTY[0],
        help="an empty CSV cell: a missing value, NULL where allowed (null, the default), "
        "or an empty string in text columns (keep)",
    )
    load.add_argument("--batch-size", type=int, help="rows per statement")
    load.add_argument(
        "--upsert", metavar="KEY",
        help="update rows whose KEY (comma-separated columns; a unique key) already exists",
    )
    load.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress bar, no summary (without tqdm there is no bar anyway)",
    )


def _model(args: argparse.Namespace) -> Any:
    if args.table:
        # Reach the server first: an unreachable one, a refused login or a missing database
        # is a configuration error, before reflection tries.
        connect(args.url, name=_DATABASE).facts  # noqa: B018
        return model_for_table(args.table, _DATABASE)
    module_name, _, class_name = args.model.partition(":")
    if not class_name:
        raise ConfigurationError(f"--model must look like package.module:Class, not {args.model}")
    try:
        model = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot import {args.model}: {exc}") from exc
    if not (isinstance(model, type) and issubclass(model, ActiveRecord)):
        raise ConfigurationError(f"{args.model} is not an ActiveRecord model")
    connect(args.url, name=model.__database__)
    return model


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    return "jsonl" if args.file.lower().endswith(_JSONL) else "csv"


def _fail(code: int, message: str) -> int:
    if code == 2:  # a configuration error is one line (drivers' messages span several)
        message = " ".join(message.split())
    print(f"error: {message}", file=sys.stderr)
    return code


def _summary(count: int, table: str, seconds: float, upserted: list[Any]) -> str:
    rate = count / seconds if seconds > 0 else 0.0
    line = f"loaded {count} rows into {table} in {seconds:.2f} s ({rate:.0f} rows/s)"
    if upserted:
        result = upserted[0]
        line += (
            f": {result.inserted} inserted, {result.updated} updated, "
            f"{result.unchanged} unchanged"
        )
    return line


def run(args: argparse.Namespace) -> int:
    """Run ``load``; return the exit code (messages go to stderr, the summary to stdout)."""
    model: Any = None
    try:
        if args.batch_size is not None and args.batch_size < 1:
            return _fail(2, "--batch-size must be at least 1")
        if not os.path.isfile(args.file):
            return _fail(2, f"no such file: {args.file}")
        try:
            model = _model(args)
            model.database().facts  # noqa: B018 - connects: a bad URL is a usage error
            key = None
            if args.upsert:
                key = check_upsert_key(model, [k.strip() for k in args.upsert.split(",")])
        except (ActiveRecordError, ImportError) as exc:
            return _fail(2, str(exc))
        upserted: list[Any] = []
        options: dict[str, Any] = {
            "encoding": "utf-8-sig",  # a byte order mark is not part of the first name
            "validate": True,
            "batch_size": args.batch_size,
            # The bar is a default nobody asked for: without tqdm the load runs without one.
            "progress": not args.quiet and available("tqdm"),
            "upsert": key,
            "on_upsert": upserted.append,
        }
        started = time.perf_counter()
        try:
            if _format(args) == "jsonl":
                count = load_source(model, args.file, read_jsonl, **options)
            else:
                delimiter = args.delimiter or (
                    "\t" if args.file.lower().endswith((".tsv", ".tsv.gz")) else ","
                )
                count = load_source(
                    model, args.file, read_csv, delimiter=delimiter, empty=args.empty, **options
                )
        except (DatabaseConnectionError, ConfigurationError, SchemaError, QueryError) as exc:
            return _fail(2, str(exc))
        except ActiveRecordError as exc:
            return _fail(1, str(exc))
        except OSError as exc:
            return _fail(2, str(exc))
        seconds = time.perf_counter() - started
        if not args.quiet:
            print(_summary(count, model.__ar_info__.table.name, seconds, upserted))
        return 0
    finally:
        if model is not None:
            disconnect(model.__database__)
        disconnect(_DATABASE)
