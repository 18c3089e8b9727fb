"""Every performance target of the project in one run: each benchmark, one after the other,
and their target tables together at the end.

Run::

    python -m benchmarks.bench_all --rows 100000 --repeat 3

Each benchmark runs in a process of its own (``python -m benchmarks.bench_X``), so one's
connections, caches and garbage never weigh on the next; inside it, as always, ours and the
baselines run side by side and the ratios are of that process's own rounds. ``--rows`` and
``--repeat`` go to every benchmark (``bench_memory`` takes ``--memory-rows``, default one
million, the issue's size); ``--only insert,upsert`` runs some. The full output of each
benchmark is printed as it comes (``--quiet``: only the targets at the end). Exits 1 when a
benchmark fails to run (a target that is not met is no failure: it is a figure).

Example (a few rows, SQLite only, as the smoke test runs it)::

    python -m benchmarks.bench_all --rows 300 --repeat 1 --backends sqlite --memory-rows 300
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

#: The benchmarks with issue targets, in the order they run.
BENCHMARKS = ("insert", "upsert", "update", "read", "load", "memory", "callbacks")


def target_tables(output: str) -> list[str]:
    r"""The tables of a benchmark's output that hold its targets: a markdown table whose first
    column is headed ``target``, or whose title (the line before it) names a target, each
    with its title.

    >>> out = "rows/s\n| method | a |\n|---|---|\nTargets\n| target | a |\n|---|---|\n| t | 1x |"
    >>> target_tables(out)
    ['Targets\n| target | a |\n|---|---|\n| t | 1x |']
    """
    lines = output.splitlines()
    tables: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("|"):
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].startswith("|"):
            j += 1
        title = lines[i - 1] if i and not lines[i - 1].startswith("|") else ""
        if lines[i].startswith("| target") or "target" in title.lower():
            tables.append("\n".join(([title] if title.strip() else []) + lines[i:j]))
        i = j
    return tables


def run(name: str, args: argparse.Namespace) -> tuple[int, str, float]:
    """Run ``benchmarks.bench_<name>``; its exit code, output and wall time."""
    rows = args.memory_rows if name == "memory" else args.rows
    command = [sys.executable, "-m", f"benchmarks.bench_{name}", "--rows", str(rows),
               "--repeat", str(args.repeat), "--backends", args.backends]
    begin = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    assert process.stdout is not None
    out: list[str] = []
    for line in process.stdout:
        out.append(line)
        if not args.quiet:
            print(line, end="", flush=True)
    return process.wait(), "".join(out), time.perf_counter() - begin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {BENCHMARKS}")
    summary: list[str] = []
    failed: list[str] = []
    for name in chosen:
        if not args.quiet:
            print(f"\n==== benchmarks.bench_{name}", flush=True)
        code, output, seconds = run(name, args)
        if code != 0:
            failed.append(name)
            if args.quiet:
                print(output[-2000:], file=sys.stderr)
        tables = target_tables(output)
        summary.append(f"### bench_{name} ({seconds:.0f} s)\n\n" + (
            "\n\n".join(tables) if tables else "(no target table printed)"))
    print("\n\n## Targets, one run (python -m benchmarks.bench_all "
          f"--rows {args.rows} --repeat {args.repeat} --backends {args.backends})\n")
    print("\n\n".join(summary))
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
