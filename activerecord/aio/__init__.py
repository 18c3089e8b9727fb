"""The async API: the ``a``-prefixed twins of the model, query and connection methods.

Each twin runs its sync method's own code through the greenlet bridge
(:mod:`activerecord.backend.bridge`) on the database's async engine: the same planner,
strategies and statements, awaited. ``ActiveRecord``, ``Query`` and ``SoftDeleteMixin`` get
them from the mixins here (:mod:`.record`, :mod:`.query`); ``Transaction`` and ``using``
are async context managers themselves.
"""
