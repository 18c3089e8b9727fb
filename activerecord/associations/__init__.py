"""Relations between models: declaring (:mod:`.relation`), reading and preloading
(:mod:`.loading`), filtering with EXISTS (:mod:`.exists`) and dependent rows on delete
(:mod:`.dependent`)."""

from __future__ import annotations

from .relation import Relation, belongs_to, has_many, has_one

__all__ = ["Relation", "belongs_to", "has_many", "has_one"]
