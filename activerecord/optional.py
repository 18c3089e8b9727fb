"""Optional dependencies (pandas, polars, tqdm), imported only when a call needs one.

A missing one is a :class:`~activerecord.errors.ConfigurationError` naming the extra that
installs it, not a bare ``ModuleNotFoundError`` from deep inside the library.

Example::

    >>> from activerecord.optional import require
    >>> require("json", extra="dataframes", what="to_pandas()").__name__
    'json'
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ConfigurationError

__all__ = ["available", "require"]


def require(module: str, *, extra: str, what: str) -> Any:
    """Import ``module``, or raise ``ConfigurationError`` saying which extra installs it.

    >>> try:
    ...     require("no_such_xyz", extra="progress", what="progress=True")
    ... except ConfigurationError as err:
    ...     print(err)
    progress=True needs no_such_xyz, which is not installed: pip install 'activerecord[progress]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        raise ConfigurationError(
            f"{what} needs {top}, which is not installed: pip install 'activerecord[{extra}]'"
        ) from exc


def available(module: str) -> bool:
    """Whether ``module`` can be imported (it is imported, so a broken install counts as absent).

    >>> available("json"), available("no_such_module_xyz")
    (True, False)
    """
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
