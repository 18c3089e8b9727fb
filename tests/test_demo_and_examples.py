"""The seed guide's walk-through and every file in examples/ run on every backend."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import demo

from .conftest import backend_url, database_for

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))


def test_demo_runs_the_guide(backend):
    database_for(backend)  # skip or fail when the server is unreachable
    lines: list[str] = []
    counts = demo.run(backend_url(backend), out=lines.append)
    activerecord.disconnect("default")
    text = "\n".join(lines)
    # Keys as the server gave them (a Galera node numbers 1, 4, 7, ...): read them back.
    first = re.search(r"User user1 has ID: (\d+)", text)
    again = re.search(r"created it again as id (\d+) ", text)
    assert first is not None and again is not None, text
    engine = sa.create_engine(backend_url(backend))
    try:
        with engine.connect() as conn:
            stored = {
                name: conn.execute(
                    sa.select(sa.column("id")).select_from(sa.table(table))
                    .where(sa.column("username") == name)
                ).scalar_one()
                for table, name in (("users", "user1"), ("soft_users", "soft4-again"))
            }
    finally:
        engine.dispose()
    assert stored == {"user1": int(first[1]), "soft4-again": int(again[1])}
    assert "Updated 2500 records" in text
    assert "a failed transaction rolled back: 0 users" in text
    assert "soft-deleted 4 inactive users: 2 visible, 6 stored" in text
    assert "restored 1 user: 3 visible" in text
    assert "hard-deleted 4 inactive users (soft-deleted or not): 2 stored" in text
    assert counts == {"active": 509, "archived": 2500, "inactive": 1}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, backend):
    database_for(backend)
    env = dict(os.environ, AR_URL=backend_url(backend))
    root = str(pathlib.Path(__file__).parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_demo_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "activerecord", "demo"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "== Summary ==" in proc.stdout


def test_readme_tour_runs(tmp_path):
    """The README's short tour (its first Python block) runs as written, on SQLite."""
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    tour = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    script = tmp_path / "tour.py"
    script.write_text(tour)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pathlib.Path(__file__).parent.parent) + os.pathsep + env.get(
        "PYTHONPATH", ""
    )
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "ORDER BY users.id DESC" in proc.stdout


def test_readme_upsert_runs(tmp_path):
    """The README's Upsert block runs after its tour, conflict="uq_users_email" included."""
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    tour = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    upsert = re.findall(r"## Upsert\n\n```python\n(.*?)```", readme, re.S)[0]
    checks = (
        "assert (result.inserted, result.updated, result.unchanged) == (1, 1, 0)\n"
        "u = User.query().where({'email': 'user1@example.com'}).one()\n"
        "assert (u.username, u.login_count) == ('user1/user1', 5), (u.username, u.login_count)\n"
        "assert User.query().where({'email': 'z@example.com'}).one().username == 'z/z'\n"
        "assert User.query().count() == 6\n"
        "print('upsert block ok')\n"
    )
    script = tmp_path / "upsert.py"
    script.write_text(tour + upsert + checks)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pathlib.Path(__file__).parent.parent) + os.pathsep + env.get(
        "PYTHONPATH", ""
    )
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "upsert block ok" in proc.stdout


def test_readme_callbacks_runs(tmp_path):
    """The README's 'Lifecycle callbacks' block runs as written, printing in hook order."""
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    block = re.findall(r"## Lifecycle callbacks\n\n```python\n(.*?)```", readme, re.S)[0]
    script = tmp_path / "callbacks.py"
    script.write_text(block)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pathlib.Path(__file__).parent.parent) + os.pathsep + env.get(
        "PYTHONPATH", ""
    )
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "created 1", "still inside", "committed ann@example.com"
    ]
