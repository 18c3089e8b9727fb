"""Logging under the ``activerecord`` logger, with bound values kept out unless asked.

The library logs each statement it runs at DEBUG level: the SQL text and the number of
parameter sets, never their values (user data stays out of logs). Call
:func:`log_parameters` to include values while debugging.

Example::

    >>> import logging
    >>> from activerecord.log import logger
    >>> logger.name, any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    ('activerecord', True)
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["log_parameters", "log_statement", "logger"]

logger = logging.getLogger("activerecord")
logger.addHandler(logging.NullHandler())

_show_values = False


def log_parameters(enabled: bool = True) -> None:
    """Include bound parameter values in the DEBUG log (off by default).

    >>> log_parameters(False)
    """
    global _show_values
    _show_values = bool(enabled)


def log_statement(sql: str, params: Any, *, executemany: bool = False) -> None:
    """Log one statement at DEBUG level: SQL text, how many parameter sets, values if asked."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    if executemany and isinstance(params, (list, tuple)):
        shape = f"{len(params)} parameter sets"
    else:
        shape = "1 parameter set" if params else "no parameters"
    if _show_values:
        logger.debug("%s [%s: %r]", " ".join(sql.split()), shape, params)
    else:
        logger.debug("%s [%s]", " ".join(sql.split()), shape)


def before_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """SQLAlchemy engine event hook (``before_cursor_execute``) feeding :func:`log_statement`."""
    log_statement(statement, parameters, executemany=executemany)
