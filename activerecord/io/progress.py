"""Progress bars for long loads: tqdm (``tqdm.auto``, a widget in notebooks), rows and rows/s.

``progress`` is what every loader accepts: ``False`` (quiet), ``True`` (a tqdm bar) or a
callable taking the number of rows done so far.

Example::

    >>> seen = []
    >>> callback, close = progress_callback(seen.append, total=10, desc="load")
    >>> callback(5); close(); seen
    [5]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..optional import require

__all__ = ["Progress", "progress_callback"]

#: ``progress=`` of a loader: quiet (False), a tqdm bar (True), or a callback(rows_done).
Progress = bool | Callable[[int], Any]


def _noop() -> None:
    return None


def progress_callback(
    progress: Progress, *, total: int | None, desc: str
) -> tuple[Callable[[int], Any] | None, Callable[[], None]]:
    """Turn ``progress=`` into a callback taking rows done (or None), and a close function."""
    if not progress:
        return None, _noop
    if callable(progress):
        return progress, _noop
    tqdm = require("tqdm.auto", extra="progress", what="progress=True").tqdm
    bars: list[Any] = []

    def update(done: int) -> None:
        # The bar starts with the first rows written: a load refused before any (a missing
        # column, a bad value in the first chunk) prints only its error, no "0 rows" line.
        if not bars:
            bars.append(tqdm(total=total, unit=" rows", desc=desc, dynamic_ncols=True))
        bars[0].update(done - bars[0].n)

    def close() -> None:
        if bars:
            bars.pop().close()

    return update, close
