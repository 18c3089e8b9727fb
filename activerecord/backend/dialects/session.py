"""Value objects of a session and a transaction, as the dialect objects hand them out.

Example::

    >>> normalize_isolation_level("repeatable_read")
    'REPEATABLE READ'
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigurationError

__all__ = ["SessionKeys", "TransactionSetup", "host_port", "normalize_isolation_level"]


@dataclass(frozen=True)
class SessionKeys:
    """How one session numbers generated keys (see :meth:`DialectFacts.session_keys`)."""

    increment: int
    offset: int
    zero_generates: bool


@dataclass(frozen=True)
class TransactionSetup:
    """Statements run after BEGIN (``begin``) and after the transaction ends (``reset``)."""

    begin: tuple[str, ...] = ()
    reset: tuple[str, ...] = ()


def host_port(text: str) -> tuple[str, int | None]:
    """One host of ``connect(hosts=...)``: ``"db1:5432"`` -> ``("db1", 5432)``.

    >>> host_port("db1:5432"), host_port("[::1]")
    (('db1', 5432), ('::1', None))
    """
    host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not sep:
        return text.strip("[]"), None
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ConfigurationError(f"bad port in host {text!r}") from None


def normalize_isolation_level(level: str | None) -> str | None:
    """``"repeatable_read"`` -> ``"REPEATABLE READ"`` (None stays None).

    >>> normalize_isolation_level("read_committed")
    'READ COMMITTED'
    """
    if level is None:
        return None
    return " ".join(level.replace("_", " ").upper().split())
