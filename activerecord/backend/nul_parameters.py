"""Which column a text parameter holding NUL was compared with, for the error of a
statement whose driver refused that text.

PostgreSQL text cannot hold NUL (``\\x00``). A written value is checked before anything is
sent (the column's bind guard names its column); a ``where()`` value goes to the driver as
it is, and psycopg refuses it with a message that names no column. The statement and its
parameters, which SQLAlchemy's error carries, do: the column stands right before the
comparison with the parameter's placeholder.
"""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc

__all__ = ["nul_parameter_column"]


def nul_parameter_column(wrapped: sa_exc.DBAPIError) -> str | None:
    """The column a statement compared a text parameter holding NUL with, where the driver
    refused that text (psycopg: PostgreSQL text cannot hold NUL; a ``where()`` value reaches
    the driver unchecked, unlike a written one): the column right before the comparison
    with the parameter's placeholder (``t.name = %(name_1)s``, ``t.name = ANY
    (%(param_1)s)``), None where something else stands there.

    >>> err = sa_exc.DataError("SELECT t.id FROM t WHERE t.name = ANY (%(param_1)s)",
    ...     {"param_1": ["a", "b" + chr(0)]}, ValueError("text cannot contain NUL"))
    >>> nul_parameter_column(err)
    'name'
    """
    params = wrapped.params
    if "nul" not in str(wrapped.orig).lower() or not isinstance(params, dict):
        return None
    statement = str(wrapped.statement or "")
    for key, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in values):
            found = re.search(_COMPARED + re.escape(f"%({key})s"), statement, re.IGNORECASE)
            if found is not None:
                return found.group(1)
    return None


#: A column (maybe qualified, maybe quoted) and a comparison, before a placeholder.
_COMPARED = (r'"?([A-Za-z_][\w$]*)"?\s*(?:=|<>|!=|<=|>=|<|>|(?:NOT\s+)?I?LIKE|(?:NOT\s+)?IN)'
             r"\s*(?:ANY\s*)?\(?\s*")
