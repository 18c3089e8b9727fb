"""Models: the ``ActiveRecord`` base (``base.py``), what is known about each model class
(``info.py``), the field → column mapping (``schema.py``), the mixins (``mixins.py``,
``softdelete.py``) and lifecycle callbacks (``callbacks.py``).

``activerecord.model`` exports the base class and the default ``MetaData``:

    >>> from activerecord.model import ActiveRecord, metadata
    >>> ActiveRecord.__abstract__, metadata is ActiveRecord.__metadata__
    (True, True)
"""

from __future__ import annotations

from .base import ActiveRecord, metadata

__all__ = ["ActiveRecord", "metadata"]
