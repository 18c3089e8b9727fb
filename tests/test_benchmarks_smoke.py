"""The benchmarks still run (tiny row counts; their numbers are not checked, only that every
method completes and the table is printed). Speed itself is measured by running them by hand."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from .conftest import backend_url, database_for, needs

ROOT = pathlib.Path(__file__).parent.parent

# The peers each benchmark compares with come with the bench (and dataframes) extras.
_PEERS = [needs("django", "bench"), needs("peewee", "bench")]
BENCHMARKS = [
    pytest.param("bench_insert", marks=_PEERS),
    pytest.param("bench_update", marks=_PEERS),
    pytest.param("bench_upsert", marks=_PEERS),
    pytest.param("bench_load", marks=[needs("pandas", "dataframes")]),
    pytest.param("bench_read", marks=_PEERS),
    "bench_memory",
    "bench_graph",
    "bench_callbacks",
    pytest.param("bench_async", marks=[needs("aiosqlite", "async"), needs("aiomysql", "async")]),
]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs(name, backend):
    database_for(backend)  # skip or fail like every backend test
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env[f"AR_TEST_{backend.upper()}_URL"] = backend_url(backend)
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--rows", "200", "--backends", backend],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| method |" in proc.stdout or "| operation |" in proc.stdout


@_PEERS[0]
@_PEERS[1]
def test_bench_all_gathers_the_targets(backend):
    # Two of the benchmarks through bench_all: each in its own process, their target tables
    # (read's, memory's) gathered at the end.
    database_for(backend)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env[f"AR_TEST_{backend.upper()}_URL"] = backend_url(backend)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_all", "--only", "read,memory", "--rows", "200",
         "--memory-rows", "200", "--repeat", "1", "--backends", backend, "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = proc.stdout[proc.stdout.index("## Targets, one run"):]
    assert "### bench_read" in summary and "### bench_memory" in summary
    assert f"| target | {backend} |" in summary  # read's targets
    assert "peak traced memory" in summary and "| batch_insert(generator) |" in summary
