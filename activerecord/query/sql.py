"""Rendering a statement as SQL text for a dialect: :func:`compile_sql` and its :class:`SQL`.

Example::

    >>> import sqlalchemy as sa
    >>> from activerecord import ActiveRecord
    >>> class Pad(ActiveRecord):
    ...     __table_name__ = "doc_pads"
    ...     id: int | None = None
    >>> print(compile_sql(sa.select(Pad.c.id), Pad, "sqlite"))  # doctest: +NORMALIZE_WHITESPACE
    SELECT doc_pads.id FROM doc_pads
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from ..backend.dialects import readable_compiler
from ..errors import QueryError

if TYPE_CHECKING:
    from ..model import ActiveRecord

__all__ = ["SQL", "compile_sql"]


class SQL(NamedTuple):
    """A statement's SQL text and its bound parameters, as a dialect renders them."""

    sql: str
    params: dict[str, Any]

    def __str__(self) -> str:
        return self.sql


def compile_sql(
    stmt: sa.ClauseElement,
    model: type[ActiveRecord],
    dialect: str | sa.Dialect | None,
    *,
    literal_binds: bool = False,
) -> SQL:
    """Render a statement for a dialect: a name, a Dialect, or the model's database.

    ``literal_binds`` writes the values into the text (for reading); a value of a type
    SQLAlchemy cannot write as a literal (JSON) is a :class:`QueryError`.
    """
    resolved: sa.Dialect
    if isinstance(dialect, sa.Dialect):
        resolved = dialect
    elif isinstance(dialect, str):
        resolved = _dialect_by_name(dialect)
    else:
        try:
            resolved = model.database().engine.dialect
        except Exception:
            resolved = _dialect_by_name("sqlite")
    compile_kwargs = {"render_postcompile": True, "literal_binds": literal_binds}
    try:
        compiled = readable_compiler(resolved)(resolved, stmt, compile_kwargs=compile_kwargs)
    except sa.exc.CompileError as exc:
        if not literal_binds:
            raise
        raise QueryError(
            f"{model.__name__}: cannot show every value inline ({exc}); "
            "call to_sql() without literal_binds to see them as parameters"
        ) from exc
    return SQL(str(compiled), {} if literal_binds else dict(compiled.params))


def _dialect_by_name(name: str) -> sa.Dialect:
    aliases = {
        "postgresql": "postgresql+psycopg",
        "mysql": "mysql+pymysql",
        "mariadb": "mysql+pymysql",
        "sqlite": "sqlite+pysqlite",
    }
    url = sa.make_url(f"{aliases.get(name, name)}://")
    return url.get_dialect()()
