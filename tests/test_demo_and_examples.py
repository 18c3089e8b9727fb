"""The seed guide's walk-through and every file in examples/ run on every backend."""

from __future__ import annotations

import gzip
import os
import pathlib
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa

import activerecord
from activerecord import demo

from .conftest import backend_url, database_for, needs

ROOT = pathlib.Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
#: Examples that need an optional extra: skipped, with the extra to install, without it.
EXAMPLE_NEEDS = {"load_csv.py": ("pandas", "dataframes")}


def test_demo_runs_the_guide(backend):
    database_for(backend)  # skip or fail when the server is unreachable
    lines: list[str] = []
    counts = demo.run(backend_url(backend), out=lines.append, keep=True)  # kept to read back
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
                for table, name in (
                    ("ar_demo_users", "user1"), ("ar_demo_soft_users", "soft4-again")
                )
            }
    finally:
        with engine.begin() as conn:
            for model in (demo.SoftUser, demo.User):
                model.__table__.drop(conn, checkfirst=True)
        engine.dispose()
    assert stored == {"user1": int(first[1]), "soft4-again": int(again[1])}
    assert "Updated 2500 records" in text
    assert "failures at record indexes [1]:" in text
    assert "record 1: username: Input should be a valid string" in text
    assert "nothing was written: 9 users before the call, 9 after" in text
    assert "deleted 2 inactive users created more than a year ago; 1 inactive user left" in text
    assert "transaction committed: deleted 1 old user, activated 1 trial user" in text
    assert "a failed transaction rolled back: 0 users are 'doomed'" in text
    assert "soft-deleted 4 inactive users: 2 visible, 6 stored" in text
    assert "restored 1 user: 3 visible" in text
    assert "hard-deleted 4 inactive users (soft-deleted or not): 2 stored" in text
    assert counts == {"active": 509, "archived": 2500, "inactive": 1}


def test_demo_explains_each_step():
    """Each step names its guide section (a heading of docs/batch-operations.md), shows the
    code it runs and prints something; no step reports that it did nothing."""
    lines: list[str] = []
    demo.run(out=lines.append)
    activerecord.disconnect("default")
    text = "\n".join(lines)
    guide = (ROOT / demo.GUIDE).read_text()
    headings = {h.strip() for h in re.findall(r"^#+ (.*)$", guide, re.M)}
    steps = text.split("\n== ")[1:-1]  # the last one is the summary
    assert len(steps) == len(demo.STEPS)
    for step in steps:
        section = re.search(r"section '(.*)'", step)
        assert section is not None and section.group(1) in headings, step
        assert "\ncode:\n    " in step and "\nwhat it shows: " in step
        printed = step.split("\nprinted:\n", 1)[1]
        assert printed.strip(), step
        assert not re.search(r"\b(deleted|Deleted|marked|restored) 0\b", printed), step


def _sentinel_tables(engine: sa.Engine, names: list[str]) -> sa.MetaData:
    """Tables of the user's, under the names the demo used to drop, each with one row."""
    meta = sa.MetaData()
    tables = [
        sa.Table(n, meta, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("note", sa.String(32)))
        for n in names
    ]
    with engine.begin() as conn:
        meta.drop_all(conn)
        meta.create_all(conn)
        for table in tables:
            conn.execute(table.insert().values(note="mine"))
    return meta


def test_demo_never_touches_the_users_tables(backend):
    """The demo once dropped ``users`` and ``soft_users``: now it keeps to its own tables and
    drops them when done."""
    db = database_for(backend)
    meta = _sentinel_tables(db.engine, ["users", "soft_users"])
    try:
        demo.run(backend_url(backend), out=lambda line: None)
        activerecord.disconnect("default")
        with db.engine.connect() as conn:
            for table in meta.sorted_tables:
                assert conn.execute(sa.select(table.c.note)).scalars().all() == ["mine"]
            inspector = sa.inspect(conn)
            assert not inspector.has_table("ar_demo_users")
            assert not inspector.has_table("ar_demo_soft_users")
    finally:
        with db.engine.begin() as conn:
            meta.drop_all(conn)


def test_demo_refuses_when_its_tables_exist(backend):
    db = database_for(backend)
    meta = _sentinel_tables(db.engine, ["ar_demo_users"])
    try:
        with pytest.raises(activerecord.ConfigurationError, match="ar_demo_users"):
            demo.run(backend_url(backend), out=lambda line: None)
        activerecord.disconnect("default")
        with db.engine.connect() as conn:
            assert conn.execute(sa.select(meta.tables["ar_demo_users"].c.note)).scalars().all() \
                == ["mine"]
            assert not sa.inspect(conn).has_table("ar_demo_soft_users")
    finally:
        with db.engine.begin() as conn:
            meta.drop_all(conn)


def test_cli_demo_refuses_in_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = subprocess.run(
        [sys.executable, "-m", "activerecord", "demo", "--url", url, "--keep"],
        capture_output=True, text=True, timeout=300,
    )
    assert first.returncode == 0, first.stderr
    again = subprocess.run(
        [sys.executable, "-m", "activerecord", "demo", "--url", url],
        capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.startswith("demo: the demo's tables exist already")
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, id=p.name, marks=[needs(*EXAMPLE_NEEDS[p.name])] if p.name in
                     EXAMPLE_NEEDS else [])
        for p in EXAMPLES
    ],
)
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


def python_blocks(document: pathlib.Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", document.read_text(), re.S | re.M)


def run_blocks(
    blocks: list[str], backend: str, cwd: pathlib.Path, drop: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    """Run the blocks as one script on ``backend``: as written, except that the
    ``connect("sqlite://")`` they start with gets the backend's URL. ``drop`` names the tables
    the blocks create, dropped first so the run starts as on an empty database."""
    db = database_for(backend)
    with db.engine.begin() as conn:
        for name in drop:
            sa.Table(name, sa.MetaData()).drop(conn, checkfirst=True)
    script = "\n\n".join(blocks)
    connect = 'activerecord.connect("sqlite://")'
    assert connect in script
    script = script.replace(connect, f"activerecord.connect({backend_url(backend)!r})", 1)
    path = cwd / "blocks.py"
    path.write_text(script)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )


def test_batch_operations_guide_runs(backend, tmp_path):
    """Every code block of docs/batch-operations.md, in order, on every backend."""
    guide = ROOT / "docs" / "batch-operations.md"
    blocks = python_blocks(guide)
    assert len(blocks) == guide.read_text().count("```python") >= 15
    proc = run_blocks(blocks, backend, tmp_path, drop=("users", "soft_users"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    step = _key_step(backend)  # a Galera node numbers 1, 4, 7
    assert out[:3] == [f"User user{i + 1} has ID: {1 + i * step}" for i in range(3)]
    assert out[3:] == ["[1]", "Updated 2500 records", "Deleted 2 records"]


def _key_step(backend: str) -> int:
    """How far apart the server puts consecutive generated keys."""
    if backend != "mysql":
        return 1
    with database_for(backend).engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT @@auto_increment_increment").scalar_one())


def test_guide_says_what_this_library_does():
    """Adapted for this library: its import paths, none of the seed's 'not implemented'."""
    text = (ROOT / "docs" / "batch-operations.md").read_text()
    assert "rhosocial" not in text and "PLANNED" not in text and "ASPIRATIONAL" not in text


#: The tables the README's blocks create (the tour drops and creates them itself too).
README_TABLES = (
    "tour_posts", "tour_members", "tour_accounts", "tour_signups", "tour_users",
    "authors", "books", "taggings", "tags", "profiles",
)


@needs("pandas", "dataframes")
@needs("tqdm", "progress")
def test_readme_blocks_run(backend, tmp_path):
    """Every ```python block of the README, in order, as one session on every backend (the
    tour connects to "sqlite://" and says the servers work too). The test supplies the two
    data files the loading block reads as "your files"."""
    (tmp_path / "users.csv").write_text("username,E-mail\ncy,cy@example.com\n")
    with gzip.open(tmp_path / "users.jsonl.gz", "wt") as f:
        f.write('{"username": "cy2", "email": "cy@example.com"}\n')
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) == (ROOT / "README.md").read_text().count("```python") >= 7
    proc = run_blocks(blocks, backend, tmp_path, drop=README_TABLES)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ORDER BY tour_users.id DESC" in out and "OFFSET" not in out
    assert "WHERE tour_users.status = 'active'" in out  # the literal_binds rendering
    assert "committed" in out
    # Run again against the same database: the tour starts over on its own tables.
    if backend != "sqlite":
        again = run_blocks(blocks, backend, tmp_path, drop=())
        assert again.returncode == 0, again.stderr


def test_readme_tour_runs_as_written(tmp_path):
    """The README's short tour (its first Python block) runs exactly as written."""
    tour = python_blocks(ROOT / "README.md")[0]
    script = tmp_path / "tour.py"
    script.write_text(tour)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "ORDER BY tour_users.id DESC" in proc.stdout


def test_readme_upsert_runs(tmp_path):
    """The README's Upsert block runs after its tour, conflict="uq_tour_users_email" included."""
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


def test_cli_demo_on_an_unreachable_server_exits_2():
    proc = subprocess.run(
        [sys.executable, "-m", "activerecord", "demo", "--url",
         "postgresql+psycopg://nobody@127.0.0.1:1/none"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("demo: cannot connect") and "Traceback" not in proc.stderr


def test_readme_callbacks_runs(tmp_path):
    """The README's 'Lifecycle callbacks' block runs as written, printing in hook order."""
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    block = re.findall(r"## Lifecycle callbacks\n\n```python\n(.*?)```", readme, re.S)[0]
    script = tmp_path / "callbacks.py"
    # The block runs after the tour, on its connection; alone it needs one of its own.
    script.write_text('import activerecord\nactiverecord.connect("sqlite://")\n' + block)
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
