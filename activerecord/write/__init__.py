"""The write engine: how rows reach the database (see ``strategies/`` for each backend's).

Example::

    >>> from activerecord.write.strategies import strategy_for
    >>> strategy_for.__name__
    'strategy_for'
"""
