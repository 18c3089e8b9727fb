"""Queries, conditions and expressions."""

from .expression import Expression, col
from .query import SQL, Query

__all__ = ["SQL", "Expression", "Query", "col"]
