"""The benchmarks still run (tiny row counts; their numbers are not checked, only that every
method completes and the table is printed). Speed itself is measured by running them by hand."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from .conftest import backend_url, database_for

ROOT = pathlib.Path(__file__).parent.parent


@pytest.mark.parametrize(
    "name",
    [
        "bench_insert", "bench_update", "bench_upsert", "bench_load", "bench_read",
        "bench_memory", "bench_graph", "bench_callbacks",
    ],
)
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
