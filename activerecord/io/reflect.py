"""A model class built at run time on an existing table, so a table with no model can be loaded
with the same validation and batch insert as a declared model.

Fields come from the reflected columns' Python types: a nullable column, one with a server
default and an autoincrement primary key become ``X | None = None``; a ``VARCHAR(n)`` gets
``max_length=n``; a type with no Python equivalent (or JSON) accepts any value. A column
whose name is not a usable field name (``"first name"``, ``"json"``) gets a field (and a column
key) named after it: ``first_name``, ``json_``, never the name of another column (with both
``"first name"`` and ``first_name`` columns, the field ``first_name`` is the column
``first_name`` and ``"first name"`` is ``first_name_``); files and DataFrames may use either
name, and an exact column name wins.

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
from typing import Annotated, Any, cast

import sqlalchemy as sa
from pydantic import Field

from ..backend.database import DEFAULT, get_database
from ..backend.errors import translate_error
from ..errors import SchemaError
from ..model import ActiveRecord

__all__ = ["float_values", "model_for_table", "model_on_table"]


def float_values(type_: Any) -> None:
    """A floating-point column reads as ``float``: MySQL's reflected ``DOUBLE`` is a Float
    that asks for ``Decimal`` (``asdecimal=True``), which a float field and pandas do not
    expect (the value is a binary double either way, so nothing is lost).

    >>> from sqlalchemy.dialects import mysql
    >>> t = mysql.DOUBLE(asdecimal=True)
    >>> float_values(t)
    >>> t.asdecimal
    False
    """
    if isinstance(type_, sa.Float) and type_.asdecimal:
        type_.asdecimal = False


def model_for_table(name: str, database: str = DEFAULT, *, schema: str | None = None) -> Any:
    """A model class on the table ``name`` of a connected database, read by reflection."""
    db = get_database(database)
    where = db.engine.url.render_as_string(hide_password=True)
    try:
        inspector = sa.inspect(db.engine)
        try:
            names = [str(c["name"]) for c in inspector.get_columns(name, schema=schema)]
        except sa.exc.NoSuchTableError as exc:
            raise SchemaError(f"no table named {name!r} in {where}") from exc
        keys = _field_names(names)

        def key_column(inspector: Any, table: sa.Table, column_info: dict[str, Any]) -> None:
            column_info["key"] = keys[str(column_info["name"])]
            float_values(column_info["type"])

        table = sa.Table(
            name,
            sa.MetaData(),
            autoload_with=cast(Any, inspector),  # its cache: the columns are read once
            schema=schema,
            listeners=[("column_reflect", key_column)],
        )
    except sa.exc.NoSuchTableError as exc:
        raise SchemaError(f"no table named {name!r} in {where}") from exc
    except sa.exc.DBAPIError as exc:  # cannot connect, no such schema, no privilege
        raise translate_error(exc, context=f"cannot read table {name!r}") from exc
    return model_on_table(table, database)


def _field_names(columns: list[str]) -> dict[str, str]:
    """Each column's field name: its own where it is usable, then derived names that take
    no other column's name (an exact name wins, so ``first_name`` keeps its name beside
    ``"first name"``)."""
    keys: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        if _field_name(column, set()) == column:
            keys[column] = column
            taken.add(column)
    for column in columns:
        if column not in keys:
            keys[column] = _field_name(column, taken)
            taken.add(keys[column])
    return keys


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
    # Named as the table, so messages (validation errors, unknown columns) name what the user
    # knows; a table name that is no identifier gets a CamelCase one.
    class_name = table.name
    if not class_name.isidentifier() or keyword.iskeyword(class_name):
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
