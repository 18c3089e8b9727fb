"""Data loading for notebooks and scripts: DataFrames and files in, DataFrames out.

Entry points (also reachable from models and queries):

* :func:`insert_dataframe` (``Model.insert_dataframe(df)``, or ``batch_insert_from_dicts(df)``)
  loads a pandas or polars DataFrame;
* :func:`load_csv` / :func:`load_jsonl` (``Model.load_csv(path)``) stream a file in chunks;
* ``query.to_dicts()`` / ``to_pandas()`` / ``to_polars()`` stream results out;
* ``python -m activerecord load FILE --url URL --table NAME`` loads from the command line.

pandas, polars and tqdm are optional: each is imported only when used. The readers out
(``query_dicts``, ``query_pandas``, ``query_polars``, ``RecordList``) live under
:mod:`activerecord.query` (a query's own terminals, below the loaders); they are
re-exported here.

Example::

    >>> import io, activerecord
    >>> from activerecord import ActiveRecord
    >>> class Fruit(ActiveRecord):
    ...     __table_name__ = "doc_fruits"
    ...     id: int | None = None
    ...     name: str
    >>> _ = activerecord.connect("sqlite://")
    >>> Fruit.create_table()
    >>> Fruit.load_csv(io.StringIO("name\\napple\\npear\\n"))
    2
    >>> Fruit.query().to_dicts()
    [{'id': 1, 'name': 'apple'}, {'id': 2, 'name': 'pear'}]
"""

from __future__ import annotations

import importlib
from typing import Any

from ..query.display import RecordList
from ..query.frames import query_pandas, query_polars
from ..query.rows import query_dicts
from .dataframes import insert_dataframe, is_dataframe
from .files import load_csv, load_jsonl

__all__ = [
    "RecordList",
    "insert_dataframe",
    "is_dataframe",
    "load_csv",
    "load_jsonl",
    "model_for_table",
    "model_on_table",
    "query_dicts",
    "query_pandas",
    "query_polars",
]

#: Names served from a submodule loaded on first use (it needs ActiveRecord, which imports us).
_LATER = {"model_for_table": ".reflect", "model_on_table": ".reflect"}


def __getattr__(name: str) -> Any:
    if name in _LATER:
        return getattr(importlib.import_module(_LATER[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
