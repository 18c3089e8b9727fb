"""Optional dependencies (pandas, polars, tqdm) missing, and the last plain ValueError /
TypeError made ActiveRecordErrors.

Absence is simulated in a subprocess that blocks the import (``sys.modules[name] = None``
makes ``import name`` raise ``ModuleNotFoundError``), never by uninstalling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord, has_many, optimistic_lock
from activerecord.errors import (
    ActiveRecordError,
    ArgumentError,
    ArgumentTypeError,
)
from activerecord.query.expression import Expression, col, excluded
from activerecord.query.rows import iter_chunks

from .conftest import backend_url, needs, raw_count


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

ROOT = Path(__file__).resolve().parent.parent

# Defines the model, makes its table empty, and binds the backend's URL (from $AR_URL).
_PRELUDE = """
import os, sys
for name in os.environ["AR_BLOCK"].split(","):
    sys.modules[name] = None  # "import name" now raises ModuleNotFoundError
import activerecord
from activerecord import ActiveRecord
from activerecord.errors import ConfigurationError

activerecord.connect(os.environ["AR_URL"])

class OptNote(ActiveRecord):
    __table_name__ = "opt_notes"
    id: int | None = None
    body: str

OptNote.drop_table()
OptNote.create_table()

def refused(call):
    try:
        call()
    except ConfigurationError as exc:
        print("ConfigurationError:", exc)
    else:
        print("no error")
"""


def _run(blocked: str, code: str, url: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, AR_BLOCK=blocked, AR_URL=url,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    return subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env=env,
    )


def test_to_pandas_and_to_polars_without_them_name_the_extra(db, backend):
    done = _run("pandas,polars", """
        OptNote.create(body="a")
        refused(lambda: OptNote.query().to_pandas())
        refused(lambda: OptNote.query().to_polars())
    """, backend_url(backend))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ConfigurationError: to_pandas() needs pandas, which is not installed: "
        "pip install 'activerecord[dataframes]'",
        "ConfigurationError: to_polars() needs polars, which is not installed: "
        "pip install 'activerecord[dataframes]'",
    ]


def test_insert_dataframe_without_pandas_refuses_a_non_frame_by_type(db, backend):
    # Without pandas or polars there is no DataFrame to pass; what is passed instead is an
    # argument error of ours, not an ImportError from importing the libraries to check.
    done = _run("pandas,polars,numpy", """
        from activerecord.errors import ArgumentTypeError
        try:
            OptNote.insert_dataframe([{"body": "a"}])
        except ArgumentTypeError as exc:
            print("ArgumentTypeError")
        print(OptNote.query().count())
    """, backend_url(backend))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ArgumentTypeError", "0"]


def test_progress_true_without_tqdm_names_the_extra_and_writes_nothing(db, backend, tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("body\nx\ny\n")
    done = _run("tqdm", f"""
        refused(lambda: OptNote.batch_insert([OptNote(body="a")], progress=True))
        refused(lambda: OptNote.load_csv({str(path)!r}, progress=True))
        print(OptNote.query().count())
    """, backend_url(backend))
    assert done.returncode == 0, done.stderr
    message = (
        "ConfigurationError: progress=True needs tqdm, which is not installed: "
        "pip install 'activerecord[progress]'"
    )
    assert done.stdout.splitlines() == [message, message, "0"]


def test_cli_load_without_tqdm_runs_without_a_bar(db, backend, tmp_path):
    # The bar is the command's default, not something asked for: without tqdm it loads quietly
    # (the summary line still printed), instead of a traceback.
    path = tmp_path / "notes.csv"
    path.write_text("body\nx\ny\nz\n")
    url = backend_url(backend)
    done = _run("tqdm", f"""
        from activerecord.__main__ import main
        code = main(["load", {str(path)!r}, "--url", {url!r}, "--table", "opt_notes"])
        print("exit", code)
    """, url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("loaded 3 rows into opt_notes in ")
    assert done.stdout.splitlines()[-1] == "exit 0"
    assert "Traceback" not in done.stderr and "rows/s" not in done.stderr  # no bar
    assert raw_count(db, "opt_notes") == 3


@needs("tqdm", "progress")
def test_cli_load_with_tqdm_still_shows_the_bar(db, backend, tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("body\nx\ny\n")
    url = backend_url(backend)
    done = _run("", f"""
        from activerecord.__main__ import main
        print("exit", main(["load", {str(path)!r}, "--url", {url!r}, "--table", "opt_notes"]))
    """, url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "exit 0"
    assert "opt_notes" in done.stderr and "rows" in done.stderr  # the bar, named by the table


# -- plain ValueError / TypeError ------------------------------------------------------------
class OptItem(Model):
    __table_name__ = "opt_items"
    id: int | None = None
    name: str


@pytest.mark.parametrize("size", [0, -1])
def test_iter_chunks_refuses_a_bad_chunk_size_at_the_call(db, backend, fresh, size):
    fresh(OptItem)
    with pytest.raises(ArgumentError, match="chunk_size must be an int of at least 1"):
        iter_chunks(OptItem.query(), size)  # not at the first next()
    with pytest.raises(ArgumentTypeError, match="chunk_size"):
        iter_chunks(OptItem.query(), "10")  # type: ignore[arg-type]


def test_iter_chunks_still_streams(db, backend, fresh):
    fresh(OptItem)
    OptItem.batch_insert([OptItem(name=f"n{i}") for i in range(5)])
    chunks = iter_chunks(OptItem.query().order_by("id"), 2)
    assert [len(rows) for _, rows in chunks] == [2, 2, 1]


@pytest.mark.parametrize("name", ["", "_version", "lock version", "1st"])
def test_optimistic_lock_refuses_a_bad_field_name(name):
    with pytest.raises(ArgumentError, match="optimistic_lock"):
        optimistic_lock(name)


@pytest.mark.parametrize(
    "call",
    [lambda: Expression(1), lambda: col(1), lambda: excluded(None)],  # type: ignore[arg-type]
    ids=["Expression", "col", "excluded"],
)
def test_expression_helpers_refuse_a_non_string(call):
    with pytest.raises(ArgumentTypeError) as info:
        call()
    assert isinstance(info.value, (ActiveRecordError, TypeError))


@needs("pandas", "dataframes")
def test_batch_insert_of_a_dataframe_refuses_commit_every(db, backend, fresh):
    import pandas as pd

    fresh(OptItem)
    with pytest.raises(ArgumentError, match="commit_every is not supported for a DataFrame"):
        OptItem.batch_insert_from_dicts(pd.DataFrame({"name": ["a", "b"]}), commit_every=1)
    assert raw_count(db, "opt_items") == 0


class OptShelf(Model):
    __table_name__ = "opt_shelves"
    id: int | None = None
    title: str
    books = has_many("OptBook")


class OptBook(Model):
    __table_name__ = "opt_books"
    id: int | None = None
    opt_shelf_id: int | None = None
    name: str


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"title": "A", "books": [{"name": "a"}]}, "not a dict"], r"record 1: expected a dict"),
        ([{"title": "A", "books": "ab"}], r"record 0 -> books: expected a list of dicts"),
        ([{"title": "A", "books": [{"name": "a"}, 7]}], r"expected a dict, got int"),
    ],
)
def test_a_nested_insert_refuses_a_wrong_shape_by_path(db, backend, fresh, rows, message):
    fresh(OptShelf, OptBook)
    with pytest.raises(ArgumentTypeError, match=message):
        OptShelf.batch_insert_from_dicts(rows, include=["books"])
    assert raw_count(db, "opt_shelves") == raw_count(db, "opt_books") == 0


def test_a_nested_insert_refuses_a_record_of_another_model(db, backend, fresh):
    fresh(OptShelf, OptBook)
    records = [OptShelf(title="A"), OptBook(name="not a shelf")]
    with pytest.raises(ArgumentTypeError, match="record 1: expected a OptShelf, got OptBook"):
        OptShelf.batch_insert(records, include=["books"])
    assert raw_count(db, "opt_shelves") == raw_count(db, "opt_books") == 0


class FrameTarget(Model):
    __table_name__ = "opt_frame_targets"

    id: int | None = None
    name: str


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_a_dataframe_passed_as_records_says_to_use_insert_dataframe(db, fresh, library):
    """Iterating a frame gives its column names: batch_insert/batch_upsert refuse it by name,
    before anything is written; batch_insert_from_dicts(df) keeps taking frames."""
    lib = pytest.importorskip(library)
    fresh(FrameTarget)
    frame = lib.DataFrame({"name": ["a", "b"]})
    for call in (FrameTarget.batch_insert, FrameTarget.batch_upsert):
        with pytest.raises(ArgumentTypeError, match=r"FrameTarget\.insert_dataframe\(df\)"):
            call(frame)
    assert FrameTarget.query().count() == 0
    assert FrameTarget.batch_insert_from_dicts(frame, return_records=False) == 2


def test_the_sync_api_runs_without_sqlalchemy_asyncio(db, backend):
    # From SQLAlchemy 2.1 on, greenlet is no dependency of SQLAlchemy's and importing its
    # asyncio extension without greenlet raises ImportError: a plain `pip install activerecord`
    # must still import and run the sync API, and an async engine names the extra.
    done = _run("sqlalchemy.ext.asyncio,greenlet", """
        import sqlalchemy as sa
        OptNote.batch_insert([OptNote(body="a"), OptNote(body="b")])
        with activerecord.Transaction():
            OptNote.query().where({"body": "a"}).update({"body": "c"})
        print(sorted(n.body for n in OptNote.query()))
        refused(lambda: activerecord.connect("sqlite+aiosqlite://", name="aio"))
        try:
            activerecord.connect(sa.create_engine("sqlite://"), name="plain")
        except Exception as exc:
            print("error:", type(exc).__name__)
        else:
            print("engine connected")
    """, backend_url(backend))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "['b', 'c']"
    assert lines[1].startswith("ConfigurationError: ") and "activerecord[async]" in lines[1]
    assert lines[2] == "engine connected"
