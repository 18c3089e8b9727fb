"""A model class built at run time on an existing table, so a table with no model can be loaded
with the same validation and batch insert as a declared model.

Fields come from the reflected columns' Python types: a nullable column, one with a server
default and an autoincrement primary key become ``X | None = None``; a ``VARCHAR(n)`` gets
``max_length=n``; a type with no Python equivalent (or JSON) accepts any value. A column
whose name is not a usable field name (``"first name"``, ``"json"``) gets a field (and a column
key) named after it: ``first_name``, ``json_``; files and DataFrames may use either name.

Example::

    >>> import activerecord, sqlalchemy as sa
    >>> db = activerecord.connect("sqlite://")
    >>> with db.engine.begin() as conn:
    ...     _ = conn.exec_driver_sql(
    ...         "CREATE TABLE doc_plain (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL)")
    >>> Plain = model_for_table("doc_plain")
    >>> Plain.batch_insert_from_dicts([{"name": "x"}])[0].id
    1
"""

from __future__ import annotations

import keyword
import re
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field

from ..backend.database import DEFAULT, get_database
from ..errors import SchemaError
from ..model import ActiveRecord

__all__ = ["model_for_table", "model_on_table"]


def model_for_table(name: str, database: str = DEFAULT, *, schema: str | None = None) -> Any:
    """A model class on the table ``name`` of a connected database, read by reflection."""
    db = get_database(database)
    taken: set[str] = set()

    def key_column(inspector: Any, table: sa.Table, column_info: dict[str, Any]) -> None:
        column_info["key"] = _field_name(str(column_info["name"]), taken)
        taken.add(column_info["key"])

    try:
        table = sa.Table(
            name,
            sa.MetaData(),
            autoload_with=db.engine,
            schema=schema,
            listeners=[("column_reflect", key_column)],
        )
    except sa.exc.NoSuchTableError as exc:
        raise SchemaError(f"no table named {name!r} in database {db.name!r}") from exc
    return model_on_table(table, database)


def _python_type(column: sa.Column[Any]) -> Any:
    if isinstance(column.type, sa.JSON):
        return Any
    try:
        tp = column.type.python_type
    except NotImplementedError:
        return Any
    if tp is str:
        length = getattr(column.type, "length", None)
        if isinstance(length, int):
            return Annotated[str, Field(max_length=length)]
    return tp


def _field_name(key: str, taken: set[str]) -> str:
    name = re.sub(r"\W", "_", key)
    if not name or name[0].isdigit() or name.startswith("_"):
        name = "f_" + name.lstrip("_")
    while (
        keyword.iskeyword(name)
        or hasattr(ActiveRecord, name)
        or name.startswith("model_")
        or name in taken
    ):
        name += "_"
    return name


def model_on_table(table: sa.Table, database: str = DEFAULT) -> Any:
    """A model class on an existing ``Table`` whose column keys are usable field names."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    pk = list(table.primary_key.columns)
    for column in table.columns:
        fname = column.key
        if _field_name(fname, set()) != fname:
            raise SchemaError(
                f"column key {fname!r} of table {table.name!r} is not a usable field name; "
                "give the column a key= (model_for_table does that when it reflects)"
            )
        tp = _python_type(column)
        autoinc = len(pk) == 1 and column is pk[0] and column.autoincrement in (True, "auto") and (
            isinstance(column.type, sa.Integer)
        )
        if column.nullable or column.server_default is not None or autoinc:
            annotations[fname] = tp | None if tp is not Any else Any
            namespace[fname] = None
        else:
            annotations[fname] = tp
    words = [w for w in re.split(r"[\W_]+", table.name) if w]
    class_name = "".join(w[:1].upper() + w[1:] for w in words) or "Table"
    if not class_name.isidentifier():
        class_name = "Table"
    namespace.update(
        __annotations__=annotations,
        __table__=table,
        __database__=database,
        __module__=__name__,
        __qualname__=class_name,
    )
    metaclass: Any = type(ActiveRecord)  # pydantic's ModelMetaclass builds the fields
    return metaclass(class_name, (ActiveRecord,), namespace)
